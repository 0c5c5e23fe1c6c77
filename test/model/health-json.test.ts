/** The JSON fields of issue 14 (TCP health): netobserv's names where it has them, flowtap's beside. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NUMERIC_DROP_REASONS } from '../../src/model/drop-reasons.ts';
import { flowToJson } from '../../src/model/flow.ts';
import { humanDurationNs } from '../../src/model/names.ts';
import { makeFlow } from '../helpers/flows.ts';
import { FULL_HEALTH, RETRANS_ONLY, TEST_DROP_REASONS } from '../helpers/health.ts';

const HEALTH_KEYS = [
  'TimeFlowRttNs',
  'TimeFlowRttMinNs',
  'TimeFlowRttMaxNs',
  'TimeHandshakeRttNs',
  'PktDropBytes',
  'PktDropPackets',
  'PktDropLatestFlags',
  'PktDropLatestState',
  'PktDropLatestDropCause',
  'PktRetransPackets',
  'PktRetransBytes',
];

test('every health field prints after the others, with the drop reason and TCP state named', () => {
  const json = JSON.parse(flowToJson(makeFlow({ health: FULL_HEALTH }), undefined, TEST_DROP_REASONS));
  const keys = Object.keys(json);
  assert.deepEqual(keys.slice(-HEALTH_KEYS.length), HEALTH_KEYS);
  assert.deepEqual(
    HEALTH_KEYS.map((k) => json[k]),
    [
      7_250_000,
      1_500_000,
      42_000_000,
      310_000,
      3_000,
      2,
      0x18,
      'TCP_ESTABLISHED',
      'SKB_DROP_REASON_NETFILTER_DROP',
      2,
      2_896,
    ],
  );
});

test('a flow without health prints none of the health fields', () => {
  const json = JSON.parse(flowToJson(makeFlow(), undefined, TEST_DROP_REASONS));
  for (const key of HEALTH_KEYS) assert.equal(key in json, false, key);
});

test('only what was measured prints: retransmissions alone, a drop without a socket state', () => {
  const retrans = JSON.parse(flowToJson(makeFlow({ health: RETRANS_ONLY }), undefined, TEST_DROP_REASONS));
  assert.deepEqual(
    HEALTH_KEYS.filter((k) => k in retrans),
    ['PktRetransPackets', 'PktRetransBytes'],
  );
  const noSocket = JSON.parse(
    flowToJson(
      makeFlow({
        proto: 17,
        health: {
          dropBytes: 80,
          dropPackets: 1,
          retransBytes: 0,
          retransPackets: 0,
          latestDrop: { timeNs: 1n, cause: 3, tcpFlags: 0, tcpState: 0 },
        },
      }),
      undefined,
      TEST_DROP_REASONS,
    ),
  );
  assert.equal('PktDropLatestState' in noSocket, false);
  assert.equal(noSocket.PktDropLatestDropCause, 'SKB_DROP_REASON_NO_SOCKET');
  assert.equal(noSocket.PktDropLatestFlags, 0);
});

test('without the kernel table a drop reason prints as its number, an unknown one as UNKNOWN_<n>', () => {
  const flow = makeFlow({
    health: { ...FULL_HEALTH, latestDrop: { timeNs: 1n, cause: 77, tcpFlags: 0, tcpState: 6 } },
  });
  assert.equal(JSON.parse(flowToJson(flow, undefined, NUMERIC_DROP_REASONS)).PktDropLatestDropCause, '77');
  assert.equal(
    JSON.parse(flowToJson(flow, undefined, TEST_DROP_REASONS)).PktDropLatestDropCause,
    'UNKNOWN_77',
  );
  assert.equal(JSON.parse(flowToJson(flow)).PktDropLatestState, 'TCP_TIME_WAIT');
});

test('RTTs above 2^53 nanoseconds print exactly', () => {
  const big = 18_446_744_073_709_551_615n;
  const text = flowToJson(makeFlow({ health: { ...RETRANS_ONLY, handshakeRttNs: big } }));
  assert.match(text, /"TimeHandshakeRttNs":18446744073709551615,/);
});

test('durations for people take the largest unit they reach, with three significant digits', () => {
  assert.deepEqual(
    [850n, 310_000n, 7_250_000n, 42_000_000n, 120_000_000n, 1_200_000_000n, 0].map(humanDurationNs),
    ['850ns', '310µs', '7.25ms', '42.0ms', '120ms', '1.20s', '0ns'],
  );
});
