/**
 * The health section of a row (struct flow_health): written from a `FlowHealth`, read back the
 * same, checked by v2 validation, and merged by one rule in every order.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mergeFlowHealth } from '../../src/codec/merge-rule.ts';
import { writeHealth } from '../../src/codec/record-batch.ts';
import { decodeV2Batch, encodeV2 } from '../../src/codec/v2.ts';
import { V2, V2_HEALTH_WORDS, V2_RECORD_BYTES } from '../../src/codec/v2-layout.ts';
import type { FlowHealth } from '../../src/model/flow.ts';
import { makeFlow } from '../helpers/flows.ts';

const FULL: FlowHealth = {
  rtt: { minNs: 1_000n, maxNs: 90_000_000n, lastNs: 5_000_000n, samples: 7 },
  handshakeRttNs: 250_000n,
  dropBytes: 2 ** 33 + 5,
  dropPackets: 3,
  retransBytes: 4_000,
  retransPackets: 2,
  latestDrop: { timeNs: 1_700_000_000_123_456_789n, cause: 6, tcpFlags: 0x18, tcpState: 1 },
};

test('a flow with health comes back from its row with the same health', () => {
  const flow = makeFlow({ health: FULL });
  const decoded = decodeV2Batch(encodeV2([flow])).flow(0);
  assert.deepEqual(decoded.health, FULL);
});

test('a flow without health has an all-zero health section and no health field', () => {
  const rows = encodeV2([makeFlow()]);
  assert.ok(rows.subarray(V2.RTT_MIN_NS, V2_RECORD_BYTES).every((b) => b === 0));
  assert.equal(decodeV2Batch(rows).flow(0).health, undefined);
});

test('only the parts measured are present: retransmissions alone give no RTT and no latest drop', () => {
  const health: FlowHealth = { dropBytes: 0, dropPackets: 0, retransBytes: 1448, retransPackets: 1 };
  assert.deepEqual(decodeV2Batch(encodeV2([makeFlow({ health })])).flow(0).health, health);
});

test('v2 validation refuses a row whose health padding is not zero', () => {
  const rows = encodeV2([makeFlow({ health: FULL })]);
  rows[V2.HEALTH_PAD + 2] = 1;
  assert.throws(() => decodeV2Batch(rows), /health_pad/);
});

function section(health: FlowHealth | undefined): Int32Array {
  const buf = Buffer.alloc(V2_RECORD_BYTES);
  if (health !== undefined) writeHealth(buf, 0, health);
  return new Int32Array(buf.buffer, buf.byteOffset + V2.RTT_MIN_NS, V2_HEALTH_WORDS).slice();
}

/** The health a row holding `words` as its health section reads as. */
function healthOf(words: Int32Array): FlowHealth | undefined {
  const row = encodeV2([makeFlow()]);
  Buffer.from(words.buffer, words.byteOffset, words.byteLength).copy(row, V2.RTT_MIN_NS);
  return decodeV2Batch(row).flow(0).health;
}

test('merging adds drops and retransmissions, spans the RTT samples and keeps the later drop', () => {
  const early: FlowHealth = {
    rtt: { minNs: 2_000n, maxNs: 3_000n, lastNs: 2_500n, samples: 2 },
    handshakeRttNs: 100n,
    dropBytes: 100,
    dropPackets: 1,
    retransBytes: 1448,
    retransPackets: 1,
    latestDrop: { timeNs: 10n, cause: 5, tcpFlags: 2, tcpState: 2 },
  };
  const late: FlowHealth = {
    rtt: { minNs: 1_000n, maxNs: 2_800n, lastNs: 1_200n, samples: 3 },
    handshakeRttNs: 999n,
    dropBytes: 60,
    dropPackets: 2,
    retransBytes: 0,
    retransPackets: 0,
    latestDrop: { timeNs: 20n, cause: 77, tcpFlags: 0x10, tcpState: 1 },
  };
  const want: FlowHealth = {
    rtt: { minNs: 1_000n, maxNs: 3_000n, lastNs: 1_200n, samples: 5 },
    handshakeRttNs: 100n,
    dropBytes: 160,
    dropPackets: 3,
    retransBytes: 1448,
    retransPackets: 1,
    latestDrop: { timeNs: 20n, cause: 77, tcpFlags: 0x10, tcpState: 1 },
  };
  const a = section(early);
  mergeFlowHealth(a, 0, section(late), 0, true);
  assert.deepEqual(healthOf(a), want);
  const b = section(late);
  mergeFlowHealth(b, 0, section(early), 0, false);
  assert.deepEqual(healthOf(b), { ...want, handshakeRttNs: 999n });
});

test('merging into an empty section gives the other one; merging an empty one changes nothing', () => {
  const empty = section(undefined);
  mergeFlowHealth(empty, 0, section(FULL), 0, true);
  assert.deepEqual(healthOf(empty), FULL);
  const full = section(FULL);
  mergeFlowHealth(full, 0, section(undefined), 0, true);
  assert.deepEqual(healthOf(full), FULL);
});
