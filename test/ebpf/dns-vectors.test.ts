/**
 * The TC program's DNS tracker against the shared vectors (test/vectors/dns.ts), through
 * BPF_PROG_TEST_RUN: each message vector gives, in the DNS map, what the offline parser makes of
 * it (id, flags, name, truncation; or the malformed reason's counter and errno), and each
 * exchange gives each flow the counts, message and errno the offline tracker gives it (latencies
 * are the kernel clock's, so only their presence is compared).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DNS_MALFORMED_REASONS } from '../../src/capture/dns/dns-parser.ts';
import { RecordBatchBuilder } from '../../src/codec/record-batch.ts';
import { DnsFlag, V2, V2_RECORD_BYTES } from '../../src/codec/v2-layout.ts';
import { splitOffset } from '../../src/ebpf/clock.ts';
import { DnsPendingExpiry } from '../../src/ebpf/dns-pending.ts';
import { type FlowMapKind, FlowObject } from '../../src/ebpf/object.ts';
import { DNS_LAYOUT, SectionMapDrainer } from '../../src/ebpf/section-drain.ts';
import { DNS_SECTION, SectionMaps } from '../../src/ebpf/section-maps.ts';
import { skipUnlessKernel } from '../helpers/privileges.ts';
import {
  DNS_CLIENT,
  DNS_EXCHANGES,
  DNS_VECTORS,
  type DnsFlowExpectation,
  dnsFrame,
  dnsVectorFrame,
  TCP_SYN,
} from '../vectors/dns.ts';

const skip = skipUnlessKernel('load the datapath with DNS tracking and test-run it');
const ZERO = splitOffset(0n);
const FOREVER_NS = 2n ** 63n;

interface Tracker {
  obj: FlowObject;
  drainer: SectionMapDrainer;
  expiry: DnsPendingExpiry;
}

function loadTracker(
  t: { after: (fn: () => void) => void },
  dedup: boolean,
  mapKind: FlowMapKind = 'percpu',
): Tracker {
  const maps = SectionMaps.create(DNS_SECTION, 64);
  t.after(() => maps.close());
  const obj = FlowObject.load({
    sampling: 1,
    maxFlows: 64,
    ringBufferBytes: 1 << 16,
    mapKind,
    dedup,
    dns: { ports: [53], mapFd: maps.outerFd },
  });
  t.after(() => obj.close());
  return {
    obj,
    drainer: new SectionMapDrainer(maps, DNS_LAYOUT),
    expiry: new DnsPendingExpiry(obj.dnsPendingFd, 5_000_000_000n),
  };
}

/** The DNS rows collected: every section drained, and every waiting query expired (as at a stop). */
function collect(tracker: Tracker): Buffer[] {
  const builder = new RecordBatchBuilder(8);
  tracker.drainer.drainInto(builder, ZERO, ZERO);
  tracker.expiry.expireInto(builder, FOREVER_NS, ZERO, ZERO);
  const batch = builder.finish();
  const rows: Buffer[] = [];
  for (let i = 0; i < batch.count; i++) {
    rows.push(Buffer.from(batch.bytes.subarray(i * V2_RECORD_BYTES, (i + 1) * V2_RECORD_BYTES)));
  }
  return rows;
}

/** A row's DNS section in the shape of an exchange's expectation (latency: present or not). */
function sectionOf(row: Buffer): DnsFlowExpectation & { latency: boolean; nameTruncated: boolean } {
  const flags = row[V2.DNS_RECORD_FLAGS];
  const section: DnsFlowExpectation & { latency: boolean; nameTruncated: boolean } = {
    queries: row.readUInt32LE(V2.DNS_QUERIES),
    answers: row.readUInt32LE(V2.DNS_ANSWERS),
    unanswered: row.readUInt32LE(V2.DNS_UNANSWERED),
    malformed: row.readUInt32LE(V2.DNS_MALFORMED),
    latency: (flags & DnsFlag.LATENCY) !== 0 && row.readBigUInt64LE(V2.DNS_LATENCY_NS) > 0n,
    nameTruncated: (flags & DnsFlag.NAME_TRUNCATED) !== 0,
  };
  if (flags & DnsFlag.HEADER) {
    section.id = row.readUInt16LE(V2.DNS_ID);
    section.flags = row.readUInt16LE(V2.DNS_FLAGS);
  }
  if (flags & DnsFlag.NAME) {
    section.name = row.subarray(V2.DNS_NAME, V2.DNS_NAME + row[V2.DNS_NAME_LEN]).toString('latin1');
  }
  if (row[V2.DNS_ERRNO] !== 0) section.errno = row[V2.DNS_ERRNO];
  return section;
}

/** One flow's rows merged as the join would: counts added, the latest message kept (rows come in order). */
function mergedByFlow(rows: Buffer[], fromClient: boolean): ReturnType<typeof sectionOf> | undefined {
  const mine = rows.filter((row) => (row.readUInt16LE(V2.SRC_PORT) === DNS_CLIENT.port) === fromClient);
  if (mine.length === 0) return undefined;
  const sections = mine.map(sectionOf);
  const merged = sections.find((s) => s.unanswered === 0) ?? sections[0];
  for (const s of sections) {
    if (s === merged) continue;
    merged.queries += s.queries;
    merged.answers += s.answers;
    merged.unanswered += s.unanswered;
    merged.malformed += s.malformed;
  }
  return merged;
}

for (const [mapKind, dedup] of [
  ['percpu', true],
  ['percpu', false],
  ['shared', true],
] as const) {
  test(`every DNS message vector reads in the kernel as in the offline parser (${mapKind} map, dedup ${dedup ? 'on' : 'off'})`, {
    skip,
  }, (t) => {
    const tracker = loadTracker(t, dedup, mapKind);
    for (const vector of DNS_VECTORS) {
      if (vector.transport === 'tcp') {
        // A SYN first, so the stream's first message start is known (the offline tracker's rule).
        tracker.obj.testRun(
          'ingress',
          dnsFrame({ from: vector.from, transport: 'tcp', payload: '', tcpFlags: TCP_SYN, seq: 0 }),
        );
      }
      const before = tracker.obj.readCounters().dnsMalformed;
      tracker.obj.testRun('ingress', dnsVectorFrame(vector));
      const after = tracker.obj.readCounters().dnsMalformed;
      const rows = collect(tracker);
      const expected = vector.expected;
      const messageRows = rows.filter((row) => row.readUInt32LE(V2.DNS_UNANSWERED) === 0);
      assert.equal(messageRows.length, 1, `${vector.name}: one DNS section`);
      const section = sectionOf(messageRows[0]);
      if ('malformed' in expected) {
        const reason = DNS_MALFORMED_REASONS.indexOf(
          expected.malformed as (typeof DNS_MALFORMED_REASONS)[number],
        );
        // A TCP segment may hold more messages after a short one: the tracker reads on (at most 4).
        const counted = after.reduce((sum, n, i) => sum + n - before[i], 0);
        assert.ok(after[reason] - before[reason] >= 1, `${vector.name}: counted as ${expected.malformed}`);
        assert.equal(section.malformed, counted, vector.name);
        if (counted === 1) assert.equal(section.errno, expected.errno, vector.name);
        continue;
      }
      assert.deepEqual(
        { id: section.id, flags: section.flags, name: section.name, nameTruncated: section.nameTruncated },
        {
          id: expected.id,
          flags: expected.flags,
          name: expected.name,
          nameTruncated: expected.nameTruncated ?? false,
        },
        vector.name,
      );
    }
  });
}

test('every DNS exchange gives each flow what the offline tracker gives it, in the kernel', { skip }, (t) => {
  for (const exchange of DNS_EXCHANGES) {
    const tracker = loadTracker(t, true);
    for (const step of exchange.steps) tracker.obj.testRun('ingress', dnsFrame(step));
    const rows = collect(tracker);
    for (const [side, expected] of [
      ['client', exchange.client],
      ['server', exchange.server],
    ] as const) {
      const got = mergedByFlow(rows, side === 'client');
      if (expected === undefined) {
        assert.equal(got, undefined, `${exchange.name}: no DNS on the ${side} flow`);
        continue;
      }
      assert.ok(got, `${exchange.name}: DNS on the ${side} flow`);
      const { latencyNs, ...rest } = expected;
      assert.deepEqual(
        {
          queries: got.queries,
          answers: got.answers,
          unanswered: got.unanswered,
          malformed: got.malformed,
          id: got.id,
          flags: got.flags,
          name: got.name,
          errno: got.errno,
          latency: got.latency,
        },
        {
          id: undefined,
          flags: undefined,
          name: undefined,
          errno: undefined,
          ...rest,
          latency: latencyNs !== undefined,
        },
        `${exchange.name}: the ${side} flow`,
      );
    }
  }
});

/** The frame of `message` over UDP in IPv6 from [2001:db8::1]:40000 to [2001:db8::53]:53 (or back). */
function ipv6DnsFrame(message: string, fromClient: boolean): Buffer {
  const payload = Buffer.from(message, 'hex');
  const udp = Buffer.alloc(8);
  udp.writeUInt16BE(fromClient ? 40000 : 53, 0);
  udp.writeUInt16BE(fromClient ? 53 : 40000, 2);
  udp.writeUInt16BE(8 + payload.length, 4);
  const ip = Buffer.alloc(40);
  ip[0] = 0x60;
  ip.writeUInt16BE(8 + payload.length, 4);
  ip[6] = 17;
  ip[7] = 64;
  const client = Buffer.from('20010db8000000000000000000000001', 'hex');
  const server = Buffer.from('20010db8000000000000000000000053', 'hex');
  (fromClient ? client : server).copy(ip, 8);
  (fromClient ? server : client).copy(ip, 24);
  const eth = Buffer.alloc(14);
  eth.writeUInt16BE(0x86dd, 12);
  return Buffer.concat([eth, ip, udp, payload]);
}

test('a query and its response over IPv6 are matched as over IPv4', { skip }, (t) => {
  const tracker = loadTracker(t, true);
  const query = DNS_VECTORS.find((v) => v.name === 'query A www.example.com');
  const response = DNS_VECTORS.find(
    (v) => v.name === 'response NOERROR with an answer whose name is a pointer',
  );
  assert.ok(query && response);
  tracker.obj.testRun('ingress', ipv6DnsFrame(query.message, true));
  tracker.obj.testRun('ingress', ipv6DnsFrame(response.message, false));
  const rows = collect(tracker);
  const client = mergedByFlow(rows, true);
  const server = mergedByFlow(rows, false);
  assert.equal(client?.queries, 1);
  assert.equal(client?.name, 'www.example.com');
  assert.equal(server?.answers, 1);
  assert.equal(server?.unanswered, 0);
  assert.equal(server?.latency, true);
  assert.equal(server?.name, 'www.example.com');
});
