import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildFilter } from '../../src/filter/build.ts';
import {
  FILTER_INSN_BYTES,
  FILTER_PREFIX_BYTES,
  FILTER_PREFIXES_OFFSET,
  FilterOp,
  INSN,
  TARGET_ACCEPT,
  TARGET_REJECT,
} from '../../src/filter/program.ts';

/** The tests of a program as plain tuples: op, arg, a, b, on true, on false. */
function insns(code: Buffer, count: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < count; i++) {
    const at = 8 + i * FILTER_INSN_BYTES;
    out.push([
      code[at + INSN.OP],
      code[at + INSN.ARG],
      code.readUInt32LE(at + INSN.A),
      code.readUInt32LE(at + INSN.B),
      code.readUInt16LE(at + INSN.ON_TRUE),
      code.readUInt16LE(at + INSN.ON_FALSE),
    ]);
  }
  return out;
}

test("'tcp port 80' compiles to three tests that only jump forward", () => {
  const program = buildFilter({ expression: 'tcp port 80' });
  assert.ok(program);
  assert.equal(program.code.readUInt32LE(0), 3);
  assert.deepEqual(insns(program.code, 3), [
    [FilterOp.PROTO, 0, 6, 0, 1, TARGET_REJECT],
    [FilterOp.PORT, 0, 80, 80, TARGET_ACCEPT, 2],
    [FilterOp.PORT, 1, 80, 80, TARGET_ACCEPT, TARGET_REJECT],
  ]);
});

test('a one-prefix test keeps its prefix in the program as address and mask words', () => {
  const program = buildFilter({ expression: 'src net 10.1.0.0/16' });
  assert.ok(program);
  const [, prefixTest] = insns(program.code, 2);
  assert.deepEqual(prefixTest.slice(0, 3), [FilterOp.PREFIX, 0, 0]);
  const at = FILTER_PREFIXES_OFFSET;
  assert.equal(program.code.subarray(at, at + 16).toString('hex'), '00000000000000000000ffff0a010000');
  assert.equal(
    program.code.subarray(at + 16, at + FILTER_PREFIX_BYTES).toString('hex'),
    'ffffffffffffffffffffffffffff0000',
  );
  assert.deepEqual(program.prefixSets, []);
});

test('a rule with a CIDR list makes one prefix set for the kernel trie, shared by both sides', () => {
  const program = buildFilter({ rules: [{ cidr: '10.0.0.0/8,192.168.0.0/16' }] });
  assert.ok(program);
  assert.equal(program.prefixSets.length, 1);
  assert.deepEqual(
    program.prefixSets[0].map((p) => p.bits),
    [104, 112],
  );
});

test('a rule sampling 1 in 10 accepts with that rate in its verdict', () => {
  const program = buildFilter({ rules: [{ protocol: 'UDP', sample: 10 }] });
  assert.ok(program);
  assert.deepEqual(insns(program.code, 1), [[FilterOp.PROTO, 0, 17, 0, TARGET_ACCEPT + 10, TARGET_REJECT]]);
});
