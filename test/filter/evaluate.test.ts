import assert from 'node:assert/strict';
import { test } from 'node:test';
import { outerVlanId, PARSE_OK, parseEthernetFrame } from '../../src/capture/packet/frame-parser.ts';
import { V2_RECORD_BYTES } from '../../src/codec/v2-layout.ts';
import { buildFilter } from '../../src/filter/build.ts';
import { filterVerdict, VERDICT_REJECT } from '../../src/filter/evaluate.ts';
import type { FilterProgram } from '../../src/filter/program.ts';
import { EXPRESSION_VECTORS, RULES_VECTORS } from '../vectors/filters.ts';
import { PACKET_VECTORS } from '../vectors/packets.ts';

const PARSABLE = PACKET_VECTORS.filter((v) => !('parseError' in v.expected));

function acceptedNames(program: FilterProgram | undefined): string[] {
  const names: string[] = [];
  for (const vector of PARSABLE) {
    const frame = Buffer.from(vector.frame, 'hex');
    const row = new Uint8Array(V2_RECORD_BYTES);
    assert.equal(parseEthernetFrame(frame, 0, frame.length, row, 0), PARSE_OK, vector.name);
    if (!program || filterVerdict(program, row, 0, outerVlanId(frame, 0, frame.length)) !== VERDICT_REJECT) {
      names.push(vector.name);
    }
  }
  return names;
}

const sorted = (names: readonly string[]) => [...names].sort();

test('every vector name in the filter table names a parsable packet vector', () => {
  const known = new Set(PARSABLE.map((v) => v.name));
  for (const entry of [...EXPRESSION_VECTORS, ...RULES_VECTORS]) {
    for (const name of entry.accepts) assert.ok(known.has(name), name);
  }
});

for (const { expression, accepts } of EXPRESSION_VECTORS) {
  test(`the offline evaluator of '${expression}' accepts exactly its vectors`, () => {
    assert.deepEqual(sorted(acceptedNames(buildFilter({ expression }))), sorted(accepts));
  });
}

for (const { name, rules, accepts } of RULES_VECTORS) {
  test(`the offline evaluator of rules: ${name}`, () => {
    assert.deepEqual(sorted(acceptedNames(buildFilter({ rules }))), sorted(accepts));
  });
}
