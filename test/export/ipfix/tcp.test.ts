/**
 * ipfix+tcp: decoded by tshark from a loopback capture, templates first on every connection,
 * sequence numbers per connection, reconnects after the collector drops, bounded waiting while it
 * is down.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { test } from 'node:test';
import { IpfixTcpExporter } from '../../../src/export/ipfix/tcp.ts';
import { TEMPLATE_SET_ID, TEMPLATES } from '../../../src/export/ipfix/templates.ts';
import { skipUnlessPacketCapture } from '../../helpers/privileges.ts';
import { assertDecodedVariedFlows, variedBatch } from './flows.ts';
import { captureLoopback, dataRecords, decodeIpfix, subtrees } from './tshark.ts';

const skip = skipUnlessPacketCapture('capture the export on loopback with tshark');

/** Header fields and set ids of one IPFIX message read off the stream. */
interface MessageSummary {
  sequence: number;
  setIds: number[];
}

/** A collector that splits each connection's byte stream into IPFIX messages. */
class MessageCollector {
  readonly server: Server = createServer((socket) => this.#accept(socket));
  readonly connections: MessageSummary[][] = [];
  readonly sockets: Socket[] = [];
  #listeners: (() => void)[] = [];

  /** Resolves when `predicate` holds, re-checked after every message or connection. */
  until(predicate: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (!predicate()) return false;
        resolve();
        return true;
      };
      if (!check()) this.#listeners.push(() => void check());
    });
  }

  #changed(): void {
    for (const listener of this.#listeners) listener();
  }

  #accept(socket: Socket): void {
    const messages: MessageSummary[] = [];
    this.connections.push(messages);
    this.sockets.push(socket);
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 4 && pending.length >= pending.readUInt16BE(2)) {
        const length = pending.readUInt16BE(2);
        const setIds: number[] = [];
        for (let p = 16; p < length; p += pending.readUInt16BE(p + 2)) setIds.push(pending.readUInt16BE(p));
        messages.push({ sequence: pending.readUInt32BE(8), setIds });
        pending = pending.subarray(length);
      }
      this.#changed();
    });
    socket.on('error', () => {}); // a test dropping the connection resets it
    this.#changed();
  }
}

async function listen(t: { after: (fn: () => unknown) => void }, collector: MessageCollector, port = 0) {
  collector.server.listen(port, '127.0.0.1');
  await once(collector.server, 'listening');
  t.after(() => {
    for (const s of collector.sockets) s.destroy();
    collector.server.close();
  });
  const address = collector.server.address();
  assert.ok(address && typeof address === 'object');
  return address.port;
}

test('tshark decodes the templates and every flow sent over TCP', { skip }, async (t) => {
  const collector = new MessageCollector();
  const port = await listen(t, collector);
  const capture = await captureLoopback((release) => t.after(release), `tcp port ${port}`);
  const exporter = new IpfixTcpExporter({ host: '127.0.0.1', port });
  exporter.export(variedBatch(12));
  exporter.export(variedBatch(12, 12));
  await exporter.stop();
  assert.equal(exporter.stats.batchesSent, 2);
  // The collector has read everything, so every segment has crossed lo and was captured.
  await collector.until(() => collector.connections[0]?.length === 3);
  const messages = await decodeIpfix(await capture.stop(), `tcp.port==${port},cflow`);

  const [templateSet] = subtrees(messages[0], 'Set 1 [id=2]');
  assert.deepEqual(
    subtrees(templateSet, 'Template (').map((tpl) => Number(tpl['cflow.template_id'])),
    TEMPLATES.map((tpl) => tpl.id),
    'over TCP one message holds every template',
  );
  assertDecodedVariedFlows(dataRecords(messages), 24);
  assert.deepEqual(
    messages.map((m) => Number(m['cflow.sequence'])),
    [0, 0, 12],
  );
});

test('a new connection after the collector drops starts with the templates and sequence 0', async (t) => {
  const collector = new MessageCollector();
  const port = await listen(t, collector);
  const exporter = new IpfixTcpExporter({ host: '127.0.0.1', port, initialBackoffMs: 10 });
  t.after(() => exporter.stop(0));
  exporter.export(variedBatch(5));
  await collector.until(() => collector.connections[0]?.length === 2);
  collector.sockets[0].destroy();
  await collector.until(() => collector.connections[1]?.length === 1);
  exporter.export(variedBatch(3));
  await collector.until(() => collector.connections[1].length === 2);

  for (const messages of collector.connections) {
    assert.deepEqual(messages[0], { sequence: 0, setIds: [TEMPLATE_SET_ID] });
    assert.equal(messages[1].sequence, 0);
  }
  assert.equal(exporter.connections, 2);
});

test('while the collector is down batches wait up to the queue bound, the rest are counted as dropped', async (t) => {
  const probe = new MessageCollector();
  const port = await listen(t, probe);
  await new Promise((resolve) => probe.server.close(resolve));

  const errors: Error[] = [];
  const exporter = new IpfixTcpExporter({
    host: '127.0.0.1',
    port,
    maxQueuedBatches: 2,
    initialBackoffMs: 10,
    maxBackoffMs: 50,
    onTransportError: (err) => errors.push(err),
  });
  t.after(() => exporter.stop(0));
  for (let i = 0; i < 5; i++) assert.equal(exporter.export(variedBatch(4, i * 4)), i < 2);
  assert.equal(exporter.stats.flowsDropped['queue-full'], 12);

  const collector = new MessageCollector();
  await listen(t, collector, port);
  await collector.until(() => collector.connections[0]?.length === 3);
  assert.equal(exporter.stats.flowsSent, 8);
  assert.ok(
    errors.some((e) => (e as NodeJS.ErrnoException).code === 'ECONNREFUSED'),
    'refused connections were reported',
  );
});

test('stop gives up on an unreachable collector after its timeout and counts what it held', async (t) => {
  const probe = new MessageCollector();
  const port = await listen(t, probe);
  await new Promise((resolve) => probe.server.close(resolve));
  let resolveFailed: (flows: number) => void;
  const failed = new Promise<number>((resolve) => {
    resolveFailed = resolve;
  });
  const exporter = new IpfixTcpExporter({
    host: '127.0.0.1',
    port,
    initialBackoffMs: 10,
    onResult: (r) => {
      if (r.error) resolveFailed(r.flows);
    },
  });
  exporter.export(variedBatch(4));
  exporter.export(variedBatch(3));
  await exporter.stop(50);
  assert.equal(await failed, 4, 'the batch waiting for a connection failed');
  assert.equal(exporter.stats.flowsDropped.stopped, 3);
  assert.equal(exporter.stats.flowsFailed, 4);
  assert.equal(exporter.stats.flowsSent, 0);
});
