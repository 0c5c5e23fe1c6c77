/**
 * DNS tracking of a capture, end to end through `flowtap read`'s data path (decoder, tracker,
 * accounter, the join after accounting): the shared exchanges (test/vectors/dns.ts) give exactly
 * their expected sections on the capture's own clock; the pending map stays bounded; malformed
 * and snapped messages are counted apart.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CaptureRead } from '../../../src/agent/commands/read-pipeline.ts';
import { CaptureInputs } from '../../../src/capture/pcap/capture-inputs.ts';
import { NO_LOCAL_HOSTS } from '../../../src/capture/pcap/direction.ts';
import type { Flow, FlowDns } from '../../../src/model/flow.ts';
import { formatIp } from '../../../src/model/ip.ts';
import { RecordingExporter } from '../../agent/fakes.ts';
import {
  DNS_CLIENT,
  DNS_EXCHANGES,
  type DnsFlowExpectation,
  type DnsFrameSpec,
  dnsFrame,
} from '../../vectors/dns.ts';
import { type ClassicPacket, classicPcap } from '../pcap/capture-files.ts';

const START_SECONDS = 1_700_000_000;

/** A nanosecond pcap of `frames` at their times after START_SECONDS. */
function capture(frames: ReadonlyArray<{ frame: Buffer; atNs: number; capturedBytes?: number }>): Buffer {
  const packets: ClassicPacket[] = frames.map(({ frame, atNs, capturedBytes }) => ({
    frame: capturedBytes === undefined ? frame : frame.subarray(0, capturedBytes),
    seconds: START_SECONDS + Math.floor(atNs / 1e9),
    fraction: atNs % 1e9,
    wireBytes: frame.length,
  }));
  return classicPcap(packets, { nanos: true });
}

/** The flows `flowtap read` makes of `pcap` with DNS tracking on port 53, and the read itself. */
async function readWithDns(
  t: { after: (fn: () => void) => void },
  pcap: Buffer,
  cacheActiveTimeoutMs = 60_000,
  dnsPorts: readonly number[] = [53],
): Promise<{ flows: Flow[]; read: CaptureRead }> {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-dns-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'dns.pcap');
  writeFileSync(file, pcap);
  const read = new CaptureRead({
    cacheMaxFlows: 1 << 16,
    cacheActiveTimeoutMs,
    localHosts: NO_LOCAL_HOSTS,
    agentIp: new Uint8Array(16),
    bidirectional: false,
    dnsPorts,
  });
  const sink = new RecordingExporter('test', 1_000_000);
  await read.run(await CaptureInputs.open([file]), [sink]);
  await sink.stop();
  return { flows: sink.flows, read };
}

/** A flow's DNS in the shape of an expectation. */
function observed(dns: FlowDns | undefined): DnsFlowExpectation | undefined {
  if (dns === undefined) return undefined;
  return {
    queries: dns.queries,
    answers: dns.answers,
    unanswered: dns.unanswered,
    malformed: dns.malformed,
    ...(dns.header ? { id: dns.header.id, flags: dns.header.flags } : {}),
    ...(dns.name !== undefined ? { name: dns.name } : {}),
    ...(dns.latencyNs !== undefined ? { latencyNs: Number(dns.latencyNs) } : {}),
    ...(dns.errno !== undefined ? { errno: dns.errno } : {}),
  };
}

/** The merged DNS of the flows sent by the client (or by the server). */
function dnsFrom(flows: readonly Flow[], from: 'client' | 'server'): DnsFlowExpectation | undefined {
  const mine = flows.filter(
    (f) => (formatIp(f.srcAddr, 0, f.etype) === DNS_CLIENT.addr) === (from === 'client'),
  );
  const withDns = mine.filter((f) => f.dns !== undefined);
  assert.ok(withDns.length <= 1, `one ${from} flow carries DNS, got ${withDns.length}`);
  return observed(withDns[0]?.dns);
}

for (const exchange of DNS_EXCHANGES) {
  test(`DNS exchange: ${exchange.name}`, async (t) => {
    const { flows } = await readWithDns(
      t,
      capture(exchange.steps.map((step) => ({ frame: dnsFrame(step), atNs: step.atNs }))),
    );
    assert.deepEqual(dnsFrom(flows, 'client'), exchange.client);
    assert.deepEqual(dnsFrom(flows, 'server'), exchange.server);
  });
}

const QUERY = DNS_EXCHANGES[0].steps[0];

/** The example query with DNS id `id`. */
function queryWithId(id: number): DnsFrameSpec {
  return { ...QUERY, payload: id.toString(16).padStart(4, '0') + QUERY.payload.slice(4) };
}

test('a query unanswered for 5 s of capture time is counted on its flow, and the flow gets a record of its own when its first left before', async (t) => {
  // The query's record is evicted by the 1 s active timeout long before its 5 s are up; a later
  // packet (an empty UDP datagram) moves the capture's clock on.
  const { flows, read } = await readWithDns(
    t,
    capture([
      { frame: dnsFrame(QUERY), atNs: 0 },
      { frame: dnsFrame({ ...QUERY, from: 'server', payload: '' }), atNs: 6e9 },
    ]),
    1_000,
  );
  const clientFlows = flows.filter((f) => formatIp(f.srcAddr, 0, f.etype) === DNS_CLIENT.addr);
  assert.equal(clientFlows.length, 2);
  assert.deepEqual(
    clientFlows.map((f) => [f.packets, f.dns?.queries, f.dns?.unanswered, f.dns?.name]),
    [
      [1, 1, 0, 'www.example.com'],
      [0, 0, 1, 'www.example.com'],
    ],
  );
  assert.equal(read.dnsStats?.timedOut, 1);
  assert.equal(read.dnsStats?.pending, 0);
});

test('10 000 queries with random ids never hold more than the pending bound, and every one is counted', async (t) => {
  const frames: Array<{ frame: Buffer; atNs: number }> = [];
  let seed = 7;
  for (let i = 0; i < 10_000; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    frames.push({ frame: dnsFrame(queryWithId(seed >>> 16)), atNs: i * 1000 });
  }
  const { flows, read } = await readWithDns(t, capture(frames));
  const stats = read.dnsStats;
  assert.ok(stats !== undefined);
  assert.ok(stats.pendingPeak <= 4096, `pending peak ${stats.pendingPeak}`);
  assert.equal(stats.pending, 0);
  assert.equal(stats.queries, 10_000);
  // Ids repeat among 10 000 random 16-bit ones: a repeat while the first waits is a retransmission.
  const dns = flows.find((f) => f.dns !== undefined)?.dns;
  assert.equal(dns?.queries, 10_000);
  assert.equal(dns?.unanswered, stats.evicted + stats.timedOut);
  assert.ok(stats.evicted > 0, 'the full map pushed its oldest queries out');
});

test('a malformed message is counted by reason; one cut by the snap length is snapped, not malformed', async (t) => {
  const malformed = { ...QUERY, payload: 'cccd01000001000000000000c00c00010001' };
  const full = dnsFrame(QUERY);
  const { read } = await readWithDns(
    t,
    capture([
      { frame: dnsFrame(malformed), atNs: 0 },
      // Snapped inside the question: the capture kept 14 + 20 + 8 + 20 bytes.
      { frame: full, atNs: 1000, capturedBytes: 62 },
    ]),
  );
  const stats = read.dnsStats;
  assert.equal(stats?.malformedTotal, 1);
  assert.equal(stats?.malformed[5], 1, 'bad-pointer');
  assert.equal(stats?.snapped, 1);
});

test('DNS on a port not listed in DNS_TRACKING_PORT is not tracked; each listed port is', async (t) => {
  const on5353 = dnsFrame(QUERY);
  on5353.writeUInt16BE(5353, 14 + 20 + 2);
  const untracked = await readWithDns(t, capture([{ frame: on5353, atNs: 0 }]));
  assert.ok(untracked.flows.every((f) => f.dns === undefined));
  const tracked = await readWithDns(t, capture([{ frame: on5353, atNs: 0 }]), 60_000, [53, 5353]);
  assert.equal(tracked.flows.find((f) => f.dns !== undefined)?.dns?.name, 'www.example.com');
});
