import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { formatTable, TableOutput } from '../../src/agent/table-output.ts';
import { RecordBatch, writeFlowRow } from '../../src/codec/record-batch.ts';
import { V2_RECORD_BYTES } from '../../src/codec/v2-layout.ts';
import type { Flow } from '../../src/model/flow.ts';
import { parseIp } from '../../src/model/ip.ts';
import { makeFlow } from '../helpers/flows.ts';
import { FULL_HEALTH, RETRANS_ONLY, TEST_DROP_REASONS } from '../helpers/health.ts';

function batch(...flows: Flow[]): RecordBatch {
  const bytes = Buffer.alloc(flows.length * V2_RECORD_BYTES);
  flows.forEach((f, i) => {
    writeFlowRow(bytes, i * V2_RECORD_BYTES, f);
  });
  return new RecordBatch(bytes, flows.length, { nameOf: (i) => (i === 3 ? 'veth0' : '') });
}

test('the table shows human bytes, protocol names and directions, largest flow first', () => {
  const text = formatTable(
    batch(
      makeFlow({ ifIndex: 3, bytes: 300, packets: 3, proto: 17, direction: 0 }),
      makeFlow({
        ifIndex: 3,
        bytes: 5 * 1024 * 1024,
        packets: 4000,
        srcAddr: 'fd00::1',
        dstAddr: 'fd00::2',
        etype: 0x86dd,
      }),
    ),
  );
  const lines = text.trimEnd().split('\n');
  assert.match(
    lines[0],
    /^END\s+INTERFACE\s+DIR\s+PROTO\s+SERVICE\s+SOURCE\s+DESTINATION\s+PACKETS\s+BYTES$/,
  );
  assert.match(lines[1], /veth0\s+out\s+TCP\s+http\s+\[fd00::1\]:1234\s+\[fd00::2\]:80\s+4000\s+5\.00 MiB$/);
  assert.match(lines[2], /veth0\s+in\s+UDP\s+http\s+10\.0\.0\.1:1234\s+10\.0\.0\.2:80\s+3\s+300$/);
});

test('ICMP flows show their type and code by name, without ports', () => {
  const text = formatTable(
    batch(makeFlow({ ifIndex: 3, proto: 1, srcPort: 0, dstPort: 0, icmpType: 8, icmpCode: 0 })),
  );
  assert.match(text.split('\n')[1], /veth0\s+out\s+ICMP\s+echo-request\s+10\.0\.0\.1\s+10\.0\.0\.2\s/);
});

test('columns for reverse counters, VLAN, tunnel and interfaces crossed appear when a flow has them', () => {
  const plain = formatTable(batch(makeFlow({ ifIndex: 3 })));
  assert.doesNotMatch(plain, /REV|VLAN|TUNNEL|CROSSED/);
  const text = formatTable(
    batch(
      makeFlow({
        ifIndex: 3,
        bytes: 2000,
        vlanOuter: 100,
        vlanInner: 7,
        tunnel: { type: 1, id: 42, srcAddr: parseIp('192.0.2.1')!, dstAddr: parseIp('192.0.2.2')! },
        crossed: [
          { ifIndex: 3, direction: 0 },
          { ifIndex: 9, direction: 1 },
        ],
        reverse: { bytes: 4096, packets: 4, timeFlowStartNs: 1n, timeFlowEndNs: 2n, tcpFlags: 0, dscp: 0 },
      }),
      makeFlow({ ifIndex: 3, srcPort: 5 }),
    ),
  );
  const lines = text.trimEnd().split('\n');
  assert.match(lines[0], /BYTES\s+REV PACKETS\s+REV BYTES\s+VLAN\s+TUNNEL\s+CROSSED$/);
  assert.match(lines[1], /\s4\s+4\.00 KiB\s+100\.7\s+VXLAN 42 192\.0\.2\.1>192\.0\.2\.2\s+veth0 in,9 out$/);
  assert.match(lines[2], /100$/, 'a flow without them has empty cells');
});

test('DNS columns show the name asked, how it went and the latency, when a flow has DNS', () => {
  assert.doesNotMatch(formatTable(batch(makeFlow({ ifIndex: 3 }))), /DNS/);
  const text = formatTable(
    batch(
      makeFlow({
        ifIndex: 3,
        bytes: 300,
        proto: 17,
        srcPort: 53,
        dns: {
          queries: 0,
          answers: 1,
          unanswered: 0,
          malformed: 0,
          latestNs: 1n,
          header: { id: 1, flags: 0x8183 },
          name: 'nx.example',
          latencyNs: 12_340_000n,
        },
      }),
      makeFlow({
        ifIndex: 3,
        bytes: 200,
        proto: 17,
        dstPort: 53,
        dns: { queries: 1, answers: 0, unanswered: 1, malformed: 0, latestNs: 1n, name: 'slow.example' },
      }),
      makeFlow({ ifIndex: 3, bytes: 100 }),
    ),
  );
  const lines = text.trimEnd().split('\n');
  assert.match(lines[0], /BYTES\s+DNS NAME\s+DNS\s+DNS LATENCY$/);
  assert.match(lines[1], /300\s+nx\.example\s+NXDomain\s+12\.3ms$/);
  assert.match(lines[2], /200\s+slow\.example\s+unanswered$/);
});

test('the table output writes one table per batch to its stream', async () => {
  const out = new PassThrough();
  let text = '';
  out.setEncoding('utf8').on('data', (d: string) => {
    text += d;
  });
  const output = new TableOutput({ out, maxQueuedBatches: 2 });
  output.export(batch(makeFlow({ ifIndex: 3 }), makeFlow({ ifIndex: 3, srcPort: 5 })));
  output.export(batch(makeFlow({ ifIndex: 3, srcPort: 6 })));
  await output.stop();
  assert.equal(text.match(/^END /gm)?.length, 2, 'two headers');
  assert.match(text, /10\.0\.0\.1:5 /);
  assert.match(text, /10\.0\.0\.1:6 /);
  assert.equal(output.stats.flowsSent, 3);
});

test('with --resolve the table shows the names of addresses that have one', () => {
  const names = new Map([['10.0.0.2', 'web.example']]);
  const text = formatTable(batch(makeFlow({ ifIndex: 3 })), (address) => names.get(address) ?? address);
  assert.match(text.split('\n')[1], /10\.0\.0\.1:1234\s+web\.example:80\s/);
});

test('columns for RTT, handshake, retransmissions and drops appear when a flow has them, the cause by short name', () => {
  const plain = formatTable(batch(makeFlow({ ifIndex: 3 })), undefined, () =>
    assert.fail('names asked without drops'),
  );
  assert.doesNotMatch(plain, /RTT|HANDSHAKE|RETRANS|DROP/);
  const text = formatTable(
    batch(
      makeFlow({ ifIndex: 3, bytes: 2000, health: FULL_HEALTH }),
      makeFlow({ ifIndex: 3, health: RETRANS_ONLY }),
    ),
    undefined,
    () => TEST_DROP_REASONS,
  );
  const lines = text.trimEnd().split('\n');
  assert.match(lines[0], /BYTES\s+RTT\s+HANDSHAKE\s+RETRANS\s+DROPS\s+DROP CAUSE$/);
  assert.match(lines[1], /1\.95 KiB\s+7\.25ms\s+310µs\s+2\s+2\s+NETFILTER_DROP$/);
  assert.match(lines[2], /100\s+3$/);
});
