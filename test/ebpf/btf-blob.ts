/**
 * Builds BTF blobs by hand for the reader's tests: a header, a type section of the kinds given,
 * and a string section, in either byte order.
 */
import { BTF_HEADER_BYTES, BTF_MAGIC, BtfKind } from '../../src/ebpf/btf.ts';

/** One type to write: its kind, name, vlen, and the trailer words after `struct btf_type`. */
export interface BlobType {
  kind: number;
  name?: string;
  /** kind_flag (bit 31 of info): signed for enums. */
  kindFlag?: boolean;
  /** Third word of struct btf_type (size or type id). */
  sizeOrType?: number;
  /** Entries after the type: words; a string stands for the offset of that name. */
  trailer?: (number | string)[];
  /** vlen; by default the trailer's entry count for kinds with entries. */
  vlen?: number;
}

const ENTRY_WORDS: Partial<Record<number, number>> = {
  [BtfKind.STRUCT]: 3,
  [BtfKind.UNION]: 3,
  [BtfKind.ENUM]: 2,
  [BtfKind.FUNC_PROTO]: 2,
  [BtfKind.DATASEC]: 3,
  [BtfKind.ENUM64]: 3,
};

/** An enum with `members` as [name, value]; ENUM64 when a value needs more than 32 bits. */
export function enumType(name: string, members: [string, bigint | number][], signed = false): BlobType {
  const wide = members.some(([, v]) => BigInt(v) > 0xffffffffn || BigInt(v) < -0x80000000n);
  const trailer: (number | string)[] = [];
  for (const [n, v] of members) {
    const raw = BigInt.asUintN(64, BigInt(v));
    trailer.push(n, Number(raw & 0xffffffffn));
    if (wide) trailer.push(Number(raw >> 32n));
  }
  return {
    kind: wide ? BtfKind.ENUM64 : BtfKind.ENUM,
    name,
    kindFlag: signed,
    sizeOrType: wide ? 8 : 4,
    trailer,
  };
}

/** A whole BTF blob holding `types`, little-endian unless `bigEndian`. */
export function btfBlob(types: BlobType[], bigEndian = false): Buffer {
  const strings = ['']; // offset 0 is the empty name
  const offsets = new Map<string, number>([['', 0]]);
  let strBytes = 1;
  const nameOffset = (s: string): number => {
    let off = offsets.get(s);
    if (off === undefined) {
      off = strBytes;
      offsets.set(s, off);
      strings.push(s);
      strBytes += Buffer.byteLength(s) + 1;
    }
    return off;
  };
  const words: number[] = [];
  for (const t of types) {
    const entryWords = ENTRY_WORDS[t.kind];
    const trailer = t.trailer ?? [];
    const vlen = t.vlen ?? (entryWords ? trailer.length / entryWords : 0);
    words.push(
      nameOffset(t.name ?? ''),
      ((t.kindFlag ? 1 : 0) << 31) | (t.kind << 24) | vlen,
      t.sizeOrType ?? 0,
    );
    for (const w of trailer) words.push(typeof w === 'string' ? nameOffset(w) : w);
  }
  const typeBytes = words.length * 4;
  const out = Buffer.alloc(BTF_HEADER_BYTES + typeBytes + strBytes);
  const u16 = (v: number, at: number) => (bigEndian ? out.writeUInt16BE(v, at) : out.writeUInt16LE(v, at));
  const u32 = (v: number, at: number) =>
    bigEndian ? out.writeUInt32BE(v >>> 0, at) : out.writeUInt32LE(v >>> 0, at);
  u16(BTF_MAGIC, 0);
  out[2] = 1;
  u32(BTF_HEADER_BYTES, 4);
  u32(0, 8);
  u32(typeBytes, 12);
  u32(typeBytes, 16);
  u32(strBytes, 20);
  for (let i = 0; i < words.length; i++) u32(words[i] as number, BTF_HEADER_BYTES + i * 4);
  let at = BTF_HEADER_BYTES + typeBytes;
  for (const s of strings) {
    out.write(s, at, 'latin1');
    at += Buffer.byteLength(s) + 1;
  }
  return out;
}
