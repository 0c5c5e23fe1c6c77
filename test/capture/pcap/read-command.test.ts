import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { TRUNCATED_INPUT_EXIT_CODE } from '../../../src/errors.ts';
import { startCollector } from '../../../src/export/grpc-collector.ts';
import { runCli } from '../../helpers/cli.ts';
import { PACKET_VECTORS } from '../../vectors/packets.ts';
import { classicPcap, PcapngWriter } from './capture-files.ts';

const TCP4 = Buffer.from(PACKET_VECTORS[0].frame, 'hex');
const TRUNCATED = Buffer.from(PACKET_VECTORS.find((v) => v.name === 'truncated udp header')!.frame, 'hex');
const T0 = 1_700_000_000;

describe('flowtap read', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-read-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('prints flows as JSON lines and a summary with skips by reason on stderr', async () => {
    const capture = new PcapngWriter()
      .section()
      .iface({ linkType: 1, name: 'eth7' })
      .epb(0, BigInt(T0) * 1_000_000n, TCP4)
      .epb(0, BigInt(T0) * 1_000_000n + 10n, TCP4)
      .epb(0, BigInt(T0) * 1_000_000n + 20n, TRUNCATED)
      .toBuffer();
    const { code, stdout, stderr } = await runCli(['read', '-'], { stdin: capture });
    assert.equal(code, 0, stderr);
    const flows = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(flows.length, 1);
    assert.equal(flows[0].Packets, 2);
    assert.equal(flows[0].Bytes, 2 * TCP4.length);
    assert.equal(flows[0].Interface, 'eth7');
    assert.equal(flows[0].TimeFlowStart, '2023-11-14T22:13:20Z');
    assert.equal(flows[0].TimeFlowEnd, '2023-11-14T22:13:20.00001Z');
    assert.equal(
      stderr,
      'flowtap read: pcapng, 3 packets read, 2 counted into 1 flows, 1 skipped (1 parse-error)\n',
    );
  });

  test('a capture that ends inside a packet exits 3 after its flows, with the error and then the summary', async () => {
    const whole = new PcapngWriter()
      .section()
      .iface({ linkType: 1 })
      .epb(0, 1n, TCP4)
      .epb(0, 2n, TCP4)
      .toBuffer();
    const cut = whole.subarray(0, whole.length - 10);
    const { code, stdout, stderr } = await runCli(['read', '-'], { stdin: cut });
    assert.equal(code, TRUNCATED_INPUT_EXIT_CODE, stderr);
    assert.equal(JSON.parse(stdout.trim()).Packets, 1, 'the whole packet before the cut is exported');
    const lines = stderr.trim().split('\n');
    assert.equal(lines.length, 2, stderr);
    assert.match(lines[0], /^flowtap: the pcapng capture ends inside a packet record at byte offset \d+/);
    assert.match(
      lines[1],
      /^flowtap read: pcapng, 2 packets read, 1 counted into 1 flows, 1 skipped \(1 truncated-end\)/,
    );
  });

  test('the summary names each link type passed over with its packet count', async () => {
    const capture = new PcapngWriter()
      .section()
      .iface({ linkType: 1 })
      .iface({ linkType: 147 })
      .iface({ linkType: 189 })
      .epb(0, 1n, TCP4)
      .epb(1, 2n, TCP4)
      .epb(1, 3n, TCP4)
      .epb(2, 4n, TCP4)
      .toBuffer();
    const { code, stderr } = await runCli(['read', '-'], { stdin: capture });
    assert.equal(code, 0, stderr);
    assert.equal(
      stderr,
      'flowtap read: pcapng, 4 packets read, 1 counted into 1 flows, 3 skipped (3 unsupported-link-type); ' +
        'link types not read: 147 (2 packets), 189 (1 packets)\n',
    );
  });

  test('the active timeout runs on the packets’ times', async () => {
    const file = join(dir, 'timeout.pcap');
    writeFileSync(file, classicPcap([0, 1, 7].map((s) => ({ frame: TCP4, seconds: T0 + s, fraction: 0 }))));
    const { code, stdout, stderr } = await runCli(['read', '--cache-active-timeout', '5s', file]);
    assert.equal(code, 0, stderr);
    const packets = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).Packets);
    assert.deepEqual(packets, [2, 1]);
  });

  test('a damaged capture prints the flows before the damage, then the byte offset, and exits 1', async () => {
    const good = classicPcap([{ frame: TCP4, seconds: T0, fraction: 0 }]);
    const damaged = Buffer.concat([
      good,
      Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0]),
    ]);
    const { code, stdout, stderr } = await runCli(['read', '-'], { stdin: damaged });
    assert.equal(code, 1);
    assert.equal(JSON.parse(stdout).Packets, 1);
    assert.match(stderr, new RegExp(`damaged pcap capture at byte offset ${good.length + 8}`));
    assert.match(stderr, /1 packets read, 1 counted into 1 flows/);
  });

  test('a bad --local-net exits 2 naming the setting', async () => {
    const { code, stderr } = await runCli(['read', '--local-net', '10.0.0.0/40', '-'], {
      stdin: classicPcap([]),
    });
    assert.equal(code, 2);
    assert.match(stderr, /--local-net/);
  });

  test('a missing file is an input error', async () => {
    const { code, stderr } = await runCli(['read', join(dir, 'absent.pcap')]);
    assert.equal(code, 1);
    assert.match(stderr, /cannot read/);
  });
});

describe('flowtap read -e', () => {
  test('exports every flow of a capture to a gRPC collector, waiting for it rather than dropping', async (t) => {
    // 300 distinct flows through a 1-flow cache: 300 evicted batches, far more than the exporter queue holds.
    const packets = Array.from({ length: 300 }, (_, i) => {
      const frame = Buffer.from(TCP4);
      frame.writeUInt16BE(10_000 + i, 34); // TCP source port
      return { frame, seconds: T0, fraction: i };
    });
    let received = 0;
    const server = await startCollector({
      port: 0,
      onRecords: (flows) => {
        received += flows.length;
      },
    });
    t.after(() => server.close(0));
    const { code, stdout, stderr } = await runCli(
      ['read', '-e', 'grpc', '--target', `127.0.0.1:${server.port}`, '--cache-max-flows', '1', '-'],
      { stdin: classicPcap(packets), env: { BUFFERS_LENGTH: '2' } },
    );
    assert.equal(code, 0, stderr);
    assert.equal(stdout, '', 'flows go to the collector, not stdout');
    assert.equal(received, 300);
    assert.match(stderr, /300 packets read, 300 counted into 300 flows\n$/);
  });

  test('flows a collector never takes make the read fail with a count, after the flush timeout', async () => {
    const { code, stderr } = await runCli(
      ['read', '-e', 'ipfix+tcp', '--target', '127.0.0.1:1', '--export-flush-timeout', '200ms', '-'],
      { stdin: classicPcap([{ frame: TCP4, seconds: T0, fraction: 0 }]) },
    );
    assert.equal(code, 1);
    assert.match(stderr, /1 flows not delivered by ipfix\+tcp/);
    assert.match(stderr, /ipfix\+tcp export: 1 flows were not delivered/);
  });
});
