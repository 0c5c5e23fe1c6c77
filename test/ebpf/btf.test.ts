import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { BTF_HEADER_BYTES, BtfKind, readBtfEnums, VMLINUX_BTF_PATH } from '../../src/ebpf/btf.ts';
import { BtfFormatError } from '../../src/errors.ts';
import { STABLE_TCP_STATES } from '../../src/model/drop-reasons.ts';
import { type BlobType, btfBlob, enumType } from './btf-blob.ts';

/** One of each kind the walk must step over, around the enums it must find. */
const MIXED_TYPES: BlobType[] = [
  { kind: BtfKind.INT, name: 'int', sizeOrType: 4, trailer: [0x01000020] },
  { kind: BtfKind.PTR, sizeOrType: 1 },
  { kind: BtfKind.ARRAY, trailer: [1, 1, 16] },
  { kind: BtfKind.STRUCT, name: 'pair', sizeOrType: 8, trailer: ['a', 1, 0, 'b', 1, 32] },
  enumType('colour', [
    ['RED', 0],
    ['GREEN', 1],
    ['BLUE', 0xfffffffe],
  ]),
  { kind: BtfKind.FUNC_PROTO, sizeOrType: 1, trailer: ['x', 1] },
  { kind: BtfKind.FUNC, name: 'f', sizeOrType: 6 },
  { kind: BtfKind.VAR, name: 'v', sizeOrType: 1, trailer: [1] },
  { kind: BtfKind.DATASEC, name: '.data', sizeOrType: 4, trailer: [8, 0, 4] },
  { kind: BtfKind.DECL_TAG, name: 'tag', sizeOrType: 4, trailer: [-1] },
  { kind: BtfKind.TYPE_TAG, name: 'user', sizeOrType: 1 },
  { kind: BtfKind.FLOAT, name: 'double', sizeOrType: 8 },
  enumType('', [
    ['TCP_ESTABLISHED', 1],
    ['TCP_SYN_SENT', 2],
  ]),
  enumType('wide', [
    ['SMALL', 1n],
    ['HUGE', 0x1_0000_0002n],
  ]),
  enumType(
    'signed_one',
    [
      ['MINUS', -5],
      ['PLUS', 7],
    ],
    true,
  ),
  { kind: BtfKind.ENUM, name: 'empty', sizeOrType: 4 },
];

test('the enums of a hand-built blob are found in type-id order with their values, stepping over every other kind', () => {
  const enums = readBtfEnums(btfBlob(MIXED_TYPES));
  assert.deepEqual(
    enums.map((e) => [e.typeId, e.name, e.members.map((m) => [m.name, m.value])]),
    [
      [
        5,
        'colour',
        [
          ['RED', 0n],
          ['GREEN', 1n],
          ['BLUE', 0xfffffffen],
        ],
      ],
      [
        13,
        '',
        [
          ['TCP_ESTABLISHED', 1n],
          ['TCP_SYN_SENT', 2n],
        ],
      ],
      [
        14,
        'wide',
        [
          ['SMALL', 1n],
          ['HUGE', 0x1_0000_0002n],
        ],
      ],
      [
        15,
        'signed_one',
        [
          ['MINUS', -5n],
          ['PLUS', 7n],
        ],
      ],
    ],
  );
});

test('a big-endian blob reads the same as a little-endian one', () => {
  assert.deepEqual(readBtfEnums(btfBlob(MIXED_TYPES, true)), readBtfEnums(btfBlob(MIXED_TYPES)));
});

test('the filter picks enums by name or, for anonymous ones, by their first enumerator', () => {
  const picked = readBtfEnums(
    btfBlob(MIXED_TYPES),
    (name, first) => name === 'wide' || first === 'TCP_ESTABLISHED',
  );
  assert.deepEqual(
    picked.map((e) => e.typeId),
    [13, 14],
  );
});

test('a header longer than version 1 defines is allowed (fields added later are skipped)', () => {
  const blob = btfBlob(MIXED_TYPES);
  const longer = Buffer.concat([
    blob.subarray(0, BTF_HEADER_BYTES),
    Buffer.alloc(8),
    blob.subarray(BTF_HEADER_BYTES),
  ]);
  longer.writeUInt32LE(BTF_HEADER_BYTES + 8, 4);
  assert.deepEqual(readBtfEnums(longer), readBtfEnums(blob));
});

/** Asserts `bytes` is refused with a BtfFormatError whose message matches `pattern`. */
function refused(bytes: Buffer, pattern: RegExp): void {
  assert.throws(
    () => readBtfEnums(bytes),
    (err) => err instanceof BtfFormatError && err.code === 'FLOWTAP_BTF_FORMAT' && pattern.test(err.message),
  );
}

test('a blob shorter than the header, with a wrong magic or version is refused', () => {
  refused(Buffer.alloc(10), /shorter than the 24-byte header/);
  const blob = btfBlob(MIXED_TYPES);
  refused(Buffer.from(blob).fill(0, 0, 2), /magic 0x0 is not 0xeb9f/);
  const v2 = Buffer.from(blob);
  v2[2] = 2;
  refused(v2, /version 2 is not 1/);
});

test('header lengths and sections reaching past the blob are refused', () => {
  const blob = btfBlob(MIXED_TYPES);
  const short = Buffer.from(blob);
  short.writeUInt32LE(8, 4);
  refused(short, /header length 8/);
  const typesPast = Buffer.from(blob);
  typesPast.writeUInt32LE(0xffffffff, 12);
  refused(typesPast, /type section .* ends past/);
  const stringsPast = Buffer.from(blob);
  stringsPast.writeUInt32LE(0xfffffff0, 16);
  refused(stringsPast, /string section .* ends past/);
});

test('a type of a kind the reader does not know is refused, since its size cannot be known', () => {
  refused(btfBlob([{ kind: 25, name: 'future' }]), /kind 25, which this reader does not know/);
  refused(btfBlob([{ kind: 0 }]), /kind 0/);
});

test('a vlen reaching past the type section is refused instead of read', () => {
  refused(
    btfBlob([{ kind: BtfKind.ENUM, name: 'e', vlen: 0xffff, trailer: ['A', 1] }]),
    /vlen 65535\) ends past the type section/,
  );
});

test('a name offset past the string section, or a name without its NUL, is refused', () => {
  const blob = btfBlob([enumType('e', [['A', 1]])]);
  const past = Buffer.from(blob);
  past.writeUInt32LE(0x7fffffff, BTF_HEADER_BYTES);
  refused(past, /name offset 2147483647 is past/);
  const unterminated = Buffer.from(blob);
  unterminated[unterminated.length - 1] = 0x41; // the last name's NUL
  refused(unterminated, /no terminating NUL/);
  const endless = btfBlob([enumType('x'.repeat(600), [['A', 1]])]);
  refused(endless, /no terminating NUL within 512 bytes/);
});

test('every truncation of a valid blob is read or refused with BtfFormatError, never a crash', () => {
  const blob = btfBlob(MIXED_TYPES);
  for (let len = 0; len < blob.length; len++) {
    const cut = Buffer.from(blob.subarray(0, len));
    try {
      readBtfEnums(cut);
    } catch (err) {
      assert.ok(err instanceof BtfFormatError, `length ${len}: ${err}`);
    }
  }
});

test('blobs with random bytes changed are read or refused with BtfFormatError, never a crash', () => {
  const blob = btfBlob(MIXED_TYPES);
  let seed = 0x9e3779b9;
  const random = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  for (let round = 0; round < 2000; round++) {
    const bad = Buffer.from(blob);
    for (let flips = 1 + Math.floor(random() * 4); flips > 0; flips--) {
      bad[Math.floor(random() * bad.length)] = Math.floor(random() * 256);
    }
    try {
      readBtfEnums(bad);
    } catch (err) {
      assert.ok(err instanceof BtfFormatError, `round ${round}: ${err}`);
    }
  }
});

test("the running kernel's BTF holds enum skb_drop_reason and the TCP states of the stable list", (t) => {
  if (!existsSync(VMLINUX_BTF_PATH)) return t.skip(`${VMLINUX_BTF_PATH} is missing: this kernel has no BTF`);
  const enums = readBtfEnums(readFileSync(VMLINUX_BTF_PATH));
  const reasons = enums.find((e) => e.name === 'skb_drop_reason');
  assert.ok(reasons, 'enum skb_drop_reason');
  const byName = new Map(reasons.members.map((m) => [m.name, m.value]));
  assert.equal(byName.get('SKB_NOT_DROPPED_YET'), 0n);
  assert.equal(byName.get('SKB_DROP_REASON_NOT_SPECIFIED'), 2n);
  assert.ok(byName.has('SKB_DROP_REASON_NETFILTER_DROP'));
  const tcp = enums.filter((e) => e.name === '' && e.members[0]?.name === 'TCP_ESTABLISHED');
  assert.equal(tcp.length, 1);
  for (const m of tcp[0]?.members ?? []) {
    const stable = STABLE_TCP_STATES.get(Number(m.value));
    if (stable !== undefined) assert.equal(m.name, stable);
  }
});
