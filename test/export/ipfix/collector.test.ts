/**
 * The IPFIX collector's transports: TCP streams framed by the messages' lengths whatever the
 * chunking, a stream with broken framing counted and closed, UDP datagrams dropped and counted
 * while paused, TCP connections held while paused, and rows handed out at close.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import type { RecordBatch } from '../../../src/codec/record-batch.ts';
import {
  type IpfixCollectorOptions,
  type IpfixTransport,
  QUEUE_FULL,
  startIpfixCollector,
} from '../../../src/export/ipfix/collector.ts';
import { IpfixEncoder } from '../../../src/export/ipfix/encoder.ts';
import { batchToJsonLines } from '../../../src/export/json-lines.ts';
import { ipfixBatch } from './flows.ts';

const POLL_MS = 10;

async function start(
  t: { after: (fn: () => unknown) => void },
  options: Partial<IpfixCollectorOptions> = {},
) {
  const batches: RecordBatch[] = [];
  const drops: string[] = [];
  const collector = await startIpfixCollector({
    host: '127.0.0.1',
    port: 0,
    transports: ['udp', 'tcp'],
    onBatch: (batch) => batches.push(batch),
    onDrop: (reason, transport: IpfixTransport) => drops.push(`${transport}:${reason}`),
    flushIntervalMs: 20,
    ...options,
  });
  t.after(() => collector.close());
  const rows = () => batches.reduce((n, b) => n + b.count, 0);
  const until = async (check: () => boolean, what: string) => {
    const deadline = Date.now() + 10_000;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  };
  return { collector, batches, drops, rows, until };
}

/** Every message of an encoder for `batch`, templates first, back to back. */
function stream(batch: RecordBatch): Buffer {
  const encoder = new IpfixEncoder({ maxMessageBytes: 1400 });
  return Buffer.concat([
    ...encoder.templateMessages(1_700_000_000),
    encoder.encodeBatch(batch, 1_700_000_000).bytes,
  ]);
}

async function tcpClient(t: { after: (fn: () => unknown) => void }, port: number): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port });
  t.after(() => socket.destroy());
  await once(socket, 'connect');
  return socket;
}

test('a TCP stream written in pieces of any size decodes to the flows sent', async (t) => {
  const { collector, batches, rows, until } = await start(t);
  const batch = ipfixBatch(120);
  const bytes = stream(batch);
  const socket = await tcpClient(t, collector.ports.tcp as number);
  // Pieces of 1 to 97 bytes: headers and sets split everywhere.
  for (let p = 0, size = 1; p < bytes.length; p += size, size = (size % 97) + 1) {
    socket.write(bytes.subarray(p, p + size));
  }
  await until(() => rows() === batch.count, 'every flow');
  assert.equal(batches.map((b) => batchToJsonLines(b)).join(''), batchToJsonLines(batch));
});

test('a TCP stream that is not IPFIX is counted and closed; other connections go on', async (t) => {
  const { collector, drops, rows, until } = await start(t);
  const bad = await tcpClient(t, collector.ports.tcp as number);
  bad.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  await once(bad, 'close');
  assert.deepEqual(drops, ['tcp:not_ipfix']);
  const good = await tcpClient(t, collector.ports.tcp as number);
  good.write(stream(ipfixBatch(5)));
  await until(() => rows() === 5, 'the good connection');
});

test('while paused, UDP datagrams are dropped as queue_full and TCP is not read; resume reads again', async (t) => {
  const { collector, drops, rows, until } = await start(t);
  const udp = createSocket('udp4');
  t.after(() => udp.close());
  const send = (datagram: Buffer) =>
    new Promise<void>((resolve) =>
      udp.send(datagram, collector.ports.udp as number, '127.0.0.1', () => resolve()),
    );
  const encoder = new IpfixEncoder();
  const templates = encoder.templateMessages(0);
  const data = encoder.encodeBatch(ipfixBatch(3), 0).bytes;
  collector.pause();
  await send(templates[0]);
  const tcp = await tcpClient(t, collector.ports.tcp as number);
  tcp.write(stream(ipfixBatch(4)));
  await until(() => drops.length === 1, 'the datagram dropped');
  assert.deepEqual(drops, [`udp:${QUEUE_FULL}`]);
  assert.equal(rows(), 0);
  collector.resume();
  for (const m of templates) await send(m);
  await send(data);
  await until(() => rows() === 7, 'both transports after resume');
});

test('close hands out the rows still gathered', async (t) => {
  const { collector, rows, until } = await start(t, { flushIntervalMs: 3_600_000, batchRows: 5 });
  const tcp = await tcpClient(t, collector.ports.tcp as number);
  // One message of 9 records: once the first 5 leave as a full batch, the other 4 are gathered.
  tcp.write(stream(ipfixBatch(9)));
  await until(() => rows() === 5, 'the first full batch');
  await collector.close();
  assert.equal(rows(), 9);
});
