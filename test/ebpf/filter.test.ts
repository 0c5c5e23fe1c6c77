import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RecordBatchBuilder } from '../../src/codec/record-batch.ts';
import { splitOffset } from '../../src/ebpf/clock.ts';
import { FlowMapDrainer } from '../../src/ebpf/flow-map.ts';
import { FlowObject } from '../../src/ebpf/object.ts';
import { buildFilter } from '../../src/filter/build.ts';
import type { FilterProgram } from '../../src/filter/program.ts';
import { skipUnlessKernel } from '../helpers/privileges.ts';
import { EXPRESSION_VECTORS, RULES_VECTORS } from '../vectors/filters.ts';
import { PACKET_VECTORS } from '../vectors/packets.ts';

const skip = skipUnlessKernel('load the datapath and test-run it');

const PARSABLE = PACKET_VECTORS.filter((v) => !('parseError' in v.expected));
const sorted = (names: readonly string[]) => [...names].sort();

function loadObject(t: { after: (fn: () => void) => void }): FlowObject {
  const obj = FlowObject.load({ sampling: 1, maxFlows: 64, ringBufferBytes: 1 << 16, mapKind: 'percpu' });
  t.after(() => obj.close());
  return obj;
}

/** Runs every parsable vector through the ingress program; returns the names that made a flow. */
function kernelAccepts(obj: FlowObject, direction: 'ingress' | 'egress' = 'ingress'): string[] {
  const drainer = new FlowMapDrainer(obj);
  const names: string[] = [];
  for (const vector of PARSABLE) {
    obj.testRun(direction, Buffer.from(vector.frame, 'hex'));
    const builder = new RecordBatchBuilder(4);
    drainer.drainInto(builder, splitOffset(0n));
    if (builder.finish().count > 0) names.push(vector.name);
  }
  return names;
}

function checkCounters(
  obj: FlowObject,
  before: { filterAccepted: number; filterRejected: number },
  accepted: number,
): void {
  const after = obj.readCounters();
  assert.equal(after.filterAccepted - before.filterAccepted, accepted, 'accepted counter');
  assert.equal(after.filterRejected - before.filterRejected, PARSABLE.length - accepted, 'rejected counter');
}

test('every filter vector gives the same verdicts in the kernel program as in the table', { skip }, (t) => {
  const obj = loadObject(t);
  const cases: { label: string; program: FilterProgram | undefined; accepts: readonly string[] }[] = [
    ...EXPRESSION_VECTORS.map((v) => ({
      label: v.expression,
      program: buildFilter({ expression: v.expression }),
      accepts: v.accepts,
    })),
    ...RULES_VECTORS.map((v) => ({
      label: v.name,
      program: buildFilter({ rules: v.rules }),
      accepts: v.accepts,
    })),
  ];
  for (const c of cases) {
    obj.filter.install(c.program);
    const before = obj.readCounters();
    assert.deepEqual(sorted(kernelAccepts(obj)), sorted(c.accepts), c.label);
    if (c.program) checkCounters(obj, before, c.accepts.length);
  }
});

test('removing the filter counts every packet again and stops the filter counters', { skip }, (t) => {
  const obj = loadObject(t);
  obj.filter.install(buildFilter({ expression: 'tcp' }));
  obj.filter.install(undefined);
  const before = obj.readCounters();
  assert.equal(kernelAccepts(obj).length, PARSABLE.length);
  const after = obj.readCounters();
  assert.equal(after.filterAccepted + after.filterRejected, before.filterAccepted + before.filterRejected);
});

test('a direction rule sees the egress program as egress', { skip }, (t) => {
  const obj = loadObject(t);
  obj.filter.install(buildFilter({ rules: [{ action: 'Accept', direction: 'Egress', protocol: 'SCTP' }] }));
  assert.deepEqual(sorted(kernelAccepts(obj, 'egress')), sorted(['ipv4 sctp', 'ipv6 sctp']));
});

test('replacing a filter many times leaves only the last one and no stale prefixes', { skip }, (t) => {
  const obj = loadObject(t);
  for (let i = 0; i < 5; i++) {
    obj.filter.install(buildFilter({ expression: `net 192.0.2.0/24 or host 2001:db8::${i + 1}` }));
  }
  // The last filter names 2001:db8::5, which no vector carries: only IPv4 vectors pass.
  const accepted = kernelAccepts(obj);
  assert.ok(accepted.length > 0);
  assert.ok(
    accepted.every((name) => !name.includes('ipv6')),
    accepted.join(', '),
  );
});
