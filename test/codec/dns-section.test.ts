/**
 * The DNS section of a row (struct flow_dns): written from a `FlowDns`, read back the same,
 * checked by v2 validation, and merged by one rule in every order.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mergeFlowDns } from '../../src/codec/merge-rule.ts';
import { writeDns } from '../../src/codec/record-batch.ts';
import { decodeV2Batch, encodeV2 } from '../../src/codec/v2.ts';
import { V2, V2_DNS_WORDS, V2_RECORD_BYTES } from '../../src/codec/v2-layout.ts';
import type { FlowDns } from '../../src/model/flow.ts';
import { makeFlow } from '../helpers/flows.ts';

const T = 1_700_000_000_000_000_000n;

const FULL: FlowDns = {
  queries: 3,
  answers: 2,
  unanswered: 1,
  malformed: 4,
  latestNs: T + 900n,
  header: { id: 0xbeef, flags: 0x8183 },
  name: 'www.example.com',
  latencyNs: 12_345_678n,
  errno: 22,
};

test('a flow with DNS comes back from its row with the same DNS', () => {
  const decoded = decodeV2Batch(encodeV2([makeFlow({ dns: FULL })])).flow(0);
  assert.deepEqual(decoded.dns, FULL);
});

test('a flow without DNS has an all-zero DNS section and no dns field', () => {
  const rows = encodeV2([makeFlow()]);
  assert.ok(rows.subarray(V2.DNS_LATENCY_NS, V2_RECORD_BYTES).every((b) => b === 0));
  assert.equal(decodeV2Batch(rows).flow(0).dns, undefined);
});

test('a name longer than 64 bytes keeps its first 64 and says it was cut; the root name is empty', () => {
  const long = `${'a'.repeat(40)}.${'b'.repeat(40)}.example`;
  const dns = decodeV2Batch(encodeV2([makeFlow({ dns: { ...FULL, name: long } })])).flow(0).dns;
  assert.equal(dns?.name, long.slice(0, 64));
  assert.equal(dns?.nameTruncated, true);
  const root = decodeV2Batch(encodeV2([makeFlow({ dns: { ...FULL, name: '' } })])).flow(0).dns;
  assert.equal(root?.name, '');
  assert.equal(root?.nameTruncated, undefined);
});

test('a record of 0 packets is valid when it carries DNS (an unanswered query), not otherwise', () => {
  const dnsOnly = makeFlow({
    packets: 0,
    bytes: 0,
    dns: { queries: 0, answers: 0, unanswered: 1, malformed: 0, latestNs: T },
  });
  assert.equal(decodeV2Batch(encodeV2([dnsOnly])).flow(0).dns?.unanswered, 1);
  assert.throws(() => decodeV2Batch(encodeV2([makeFlow({ packets: 0 })])), /packets/);
});

test('v2 validation refuses a row whose DNS padding is not zero or whose name length is over 64', () => {
  const rows = encodeV2([makeFlow({ dns: FULL })]);
  rows[V2.DNS_PAD] = 1;
  assert.throws(() => decodeV2Batch(rows), /dns_pad/);
  const long = encodeV2([makeFlow({ dns: FULL })]);
  long[V2.DNS_NAME_LEN] = 65;
  assert.throws(() => decodeV2Batch(long), /dns_name_len/);
});

function section(dns: FlowDns | undefined): Int32Array {
  const buf = Buffer.alloc(V2_RECORD_BYTES);
  if (dns !== undefined) writeDns(buf, 0, dns);
  return new Int32Array(buf.buffer, buf.byteOffset + V2.DNS_LATENCY_NS, V2_DNS_WORDS).slice();
}

/** The DNS a row holding `words` as its DNS section reads as. */
function dnsOf(words: Int32Array): FlowDns | undefined {
  const row = encodeV2([makeFlow()]);
  Buffer.from(words.buffer, words.byteOffset, words.byteLength).copy(row, V2.DNS_LATENCY_NS);
  return decodeV2Batch(row).flow(0).dns;
}

const QUERY: FlowDns = {
  queries: 1,
  answers: 0,
  unanswered: 0,
  malformed: 0,
  latestNs: T + 100n,
  header: { id: 7, flags: 0x0100 },
  name: 'nx.example',
};
const RESPONSE: FlowDns = {
  queries: 0,
  answers: 1,
  unanswered: 0,
  malformed: 1,
  latestNs: T + 200n,
  header: { id: 7, flags: 0x8183 },
  name: 'nx.example',
  latencyNs: 100n,
  errno: 14,
};

test('merging adds the counts and keeps the later message, latency and errno, in either order', () => {
  const want: FlowDns = {
    queries: 1,
    answers: 1,
    unanswered: 0,
    malformed: 1,
    latestNs: T + 200n,
    header: { id: 7, flags: 0x8183 },
    name: 'nx.example',
    latencyNs: 100n,
    errno: 14,
  };
  const a = section(QUERY);
  mergeFlowDns(a, 0, section(RESPONSE), 0);
  assert.deepEqual(dnsOf(a), want);
  const b = section(RESPONSE);
  mergeFlowDns(b, 0, section(QUERY), 0);
  assert.deepEqual(dnsOf(b), want);
});

test('a later section without a header keeps the earlier header and name', () => {
  const malformedOnly: FlowDns = { queries: 0, answers: 0, unanswered: 0, malformed: 2, latestNs: T + 500n };
  const a = section(QUERY);
  mergeFlowDns(a, 0, section(malformedOnly), 0);
  assert.deepEqual(dnsOf(a), { ...QUERY, malformed: 2, latestNs: T + 500n });
});

test('a later message replaces a cut name with a whole one, and the cut flag goes with it', () => {
  const cut: FlowDns = { ...QUERY, name: 'c'.repeat(64), nameTruncated: true };
  const a = section(cut);
  mergeFlowDns(a, 0, section({ ...QUERY, latestNs: T + 300n, name: 'short.example' }), 0);
  const merged = dnsOf(a);
  assert.equal(merged?.name, 'short.example');
  assert.equal(merged?.nameTruncated, undefined);
});

test('counts saturate at 2^32 - 1 instead of wrapping', () => {
  const big: FlowDns = { queries: 0xffff_fff0, answers: 0, unanswered: 0, malformed: 0, latestNs: T };
  const a = section(big);
  mergeFlowDns(a, 0, section(big), 0);
  assert.equal(dnsOf(a)?.queries, 0xffff_ffff);
});

test('merging into an empty section gives the other one; merging an empty one changes nothing', () => {
  const empty = section(undefined);
  mergeFlowDns(empty, 0, section(FULL), 0);
  assert.deepEqual(dnsOf(empty), FULL);
  const full = section(FULL);
  mergeFlowDns(full, 0, section(undefined), 0);
  assert.deepEqual(dnsOf(full), FULL);
});
