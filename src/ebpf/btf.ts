/**
 * A reader of BTF (the kernel's BPF Type Format, Documentation/bpf/btf.rst) that finds enums:
 * enough to learn the names the running kernel gives its enum values (`enum skb_drop_reason`, the
 * TCP states) without a table compiled into flowtap. It reads the header, walks the type section
 * record by record (each kind's size is fixed by its kind and `vlen`), and resolves names in the
 * string section. Every length and offset comes from the input and is checked before use: a
 * truncated or hostile blob raises `BtfFormatError`, never a read past the end or a long loop.
 */
import { BtfFormatError } from '../errors.ts';

/** Where the kernel exposes its own BTF (CONFIG_DEBUG_INFO_BTF). */
export const VMLINUX_BTF_PATH = '/sys/kernel/btf/vmlinux';

/** `btf_header.magic` as read in the blob's own byte order. */
export const BTF_MAGIC = 0xeb9f;
/** The only BTF version there is. */
export const BTF_VERSION = 1;
/** sizeof(struct btf_header) of version 1; a longer `hdr_len` is allowed (fields added later). */
export const BTF_HEADER_BYTES = 24;
/** sizeof(struct btf_type): name_off, info, size/type. */
const BTF_TYPE_BYTES = 12;
/**
 * Longest name read, with its NUL: the kernel refuses longer BTF names (KSYM_NAME_LEN, 512 since
 * Linux 6.1), and the bound keeps a hostile string section without terminators from making every
 * lookup scan to its end.
 */
const BTF_MAX_NAME_BYTES = 512;

/** BTF_KIND_* values (include/uapi/linux/btf.h). */
export const BtfKind = {
  INT: 1,
  PTR: 2,
  ARRAY: 3,
  STRUCT: 4,
  UNION: 5,
  ENUM: 6,
  FWD: 7,
  TYPEDEF: 8,
  VOLATILE: 9,
  CONST: 10,
  RESTRICT: 11,
  FUNC: 12,
  FUNC_PROTO: 13,
  VAR: 14,
  DATASEC: 15,
  FLOAT: 16,
  DECL_TAG: 17,
  TYPE_TAG: 18,
  ENUM64: 19,
} as const;

/** Bytes after `struct btf_type` of each kind: [fixed, per vlen entry]. */
const TRAILER_BYTES: ReadonlyArray<readonly [number, number] | undefined> = [
  undefined, // 0 is BTF_KIND_UNKN: never a real type
  [4, 0], // INT: encoding word
  [0, 0], // PTR
  [12, 0], // ARRAY: struct btf_array
  [0, 12], // STRUCT: struct btf_member
  [0, 12], // UNION
  [0, 8], // ENUM: struct btf_enum
  [0, 0], // FWD
  [0, 0], // TYPEDEF
  [0, 0], // VOLATILE
  [0, 0], // CONST
  [0, 0], // RESTRICT
  [0, 0], // FUNC
  [0, 8], // FUNC_PROTO: struct btf_param
  [4, 0], // VAR: struct btf_var
  [0, 12], // DATASEC: struct btf_var_secinfo
  [0, 0], // FLOAT
  [4, 0], // DECL_TAG: struct btf_decl_tag
  [0, 0], // TYPE_TAG
  [0, 12], // ENUM64: struct btf_enum64
];

/** One enumerator: its name and value. */
export interface BtfEnumMember {
  readonly name: string;
  /** The value, signed when the enum is (`kind_flag`), as BTF holds up to 64 bits. */
  readonly value: bigint;
}

/** One `BTF_KIND_ENUM` or `BTF_KIND_ENUM64` type. */
export interface BtfEnum {
  /** BTF type id (1-based position in the type section). */
  readonly typeId: number;
  /** '' for an anonymous enum (`enum { TCP_ESTABLISHED = 1, ... }`). */
  readonly name: string;
  readonly members: readonly BtfEnumMember[];
}

interface BtfLayout {
  readonly view: DataView;
  readonly littleEndian: boolean;
  readonly typeStart: number;
  readonly typeEnd: number;
  readonly strStart: number;
  readonly strEnd: number;
}

function readLayout(bytes: Uint8Array): BtfLayout {
  if (bytes.byteLength < BTF_HEADER_BYTES) {
    throw new BtfFormatError(
      0,
      `${bytes.byteLength} bytes is shorter than the ${BTF_HEADER_BYTES}-byte header`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // The magic tells the byte order: BTF is written in the order of the machine that made it.
  let littleEndian: boolean;
  if (view.getUint16(0, true) === BTF_MAGIC) littleEndian = true;
  else if (view.getUint16(0, false) === BTF_MAGIC) littleEndian = false;
  else throw new BtfFormatError(0, `magic 0x${view.getUint16(0, true).toString(16)} is not 0xeb9f`);
  const version = view.getUint8(2);
  if (version !== BTF_VERSION) throw new BtfFormatError(2, `version ${version} is not ${BTF_VERSION}`);
  const hdrLen = view.getUint32(4, littleEndian);
  if (hdrLen < BTF_HEADER_BYTES || hdrLen > bytes.byteLength) {
    throw new BtfFormatError(
      4,
      `header length ${hdrLen} is outside ${BTF_HEADER_BYTES}..${bytes.byteLength}`,
    );
  }
  const typeStart = section(view, littleEndian, hdrLen, 8, 'type');
  const strStart = section(view, littleEndian, hdrLen, 16, 'string');
  const typeEnd = typeStart + view.getUint32(12, littleEndian);
  const strEnd = strStart + view.getUint32(20, littleEndian);
  return { view, littleEndian, typeStart, typeEnd, strStart, strEnd };
}

/** Start of a section (`off`, `len` at header offset `field`), checked to lie inside the blob. */
function section(view: DataView, le: boolean, hdrLen: number, field: number, what: string): number {
  const off = view.getUint32(field, le);
  const len = view.getUint32(field + 4, le);
  // Sums of two u32 stay exact in a double: no overflow to guard against.
  if (hdrLen + off + len > view.byteLength) {
    throw new BtfFormatError(
      field,
      `${what} section (offset ${off}, ${len} bytes after the ${hdrLen}-byte header) ends past the blob's ${view.byteLength} bytes`,
    );
  }
  return hdrLen + off;
}

/**
 * Every enum in a BTF blob (e.g. /sys/kernel/btf/vmlinux), in type-id order; `wanted` picks
 * which by name and first enumerator name (an anonymous enum is known by its members), so only
 * those have their members' names decoded. Throws `BtfFormatError` when the blob is not BTF or
 * is damaged anywhere the walk reads.
 */
export function readBtfEnums(
  bytes: Uint8Array,
  wanted: (name: string, firstMember: string) => boolean = () => true,
): BtfEnum[] {
  const layout = readLayout(bytes);
  const { view, littleEndian: le, typeEnd } = layout;
  const strings = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const enums: BtfEnum[] = [];
  let at = layout.typeStart;
  for (let typeId = 1; at < typeEnd; typeId++) {
    if (at + BTF_TYPE_BYTES > typeEnd) throw new BtfFormatError(at, 'the type section ends inside a type');
    const info = view.getUint32(at + 4, le);
    const kind = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    const trailer = TRAILER_BYTES[kind];
    if (trailer === undefined) {
      throw new BtfFormatError(at + 4, `type ${typeId} has kind ${kind}, which this reader does not know`);
    }
    const members = at + BTF_TYPE_BYTES;
    const next = members + trailer[0] + trailer[1] * vlen;
    if (next > typeEnd)
      throw new BtfFormatError(at, `type ${typeId} (kind ${kind}, vlen ${vlen}) ends past the type section`);
    if ((kind === BtfKind.ENUM || kind === BtfKind.ENUM64) && vlen > 0) {
      const name = stringAt(layout, strings, view.getUint32(at, le), at);
      const first = stringAt(layout, strings, view.getUint32(members, le), members);
      if (wanted(name, first)) {
        const signed = info >>> 31 === 1;
        enums.push({ typeId, name, members: readMembers(layout, strings, kind, members, vlen, signed) });
      }
    }
    at = next;
  }
  return enums;
}

function readMembers(
  layout: BtfLayout,
  strings: Buffer,
  kind: number,
  start: number,
  vlen: number,
  signed: boolean,
): BtfEnumMember[] {
  const { view, littleEndian: le } = layout;
  const entryBytes = kind === BtfKind.ENUM ? 8 : 12;
  const members: BtfEnumMember[] = [];
  for (let i = 0, at = start; i < vlen; i++, at += entryBytes) {
    const name = stringAt(layout, strings, view.getUint32(at, le), at);
    let value: bigint;
    if (kind === BtfKind.ENUM) {
      value = BigInt(signed ? view.getInt32(at + 4, le) : view.getUint32(at + 4, le));
    } else {
      const lo = BigInt(view.getUint32(at + 4, le));
      const hi = BigInt(view.getUint32(at + 8, le));
      const raw = (hi << 32n) | lo;
      value = signed ? BigInt.asIntN(64, raw) : raw;
    }
    members.push({ name, value });
  }
  return members;
}

/** The NUL-terminated string at `off` of the string section; `field` is where `off` was read. */
function stringAt(layout: BtfLayout, strings: Buffer, off: number, field: number): string {
  const start = layout.strStart + off;
  if (start >= layout.strEnd) {
    throw new BtfFormatError(
      field,
      `name offset ${off} is past the ${layout.strEnd - layout.strStart}-byte string section`,
    );
  }
  const limit = Math.min(layout.strEnd, start + BTF_MAX_NAME_BYTES);
  const end = strings.subarray(start, limit).indexOf(0);
  if (end < 0) {
    throw new BtfFormatError(
      field,
      `the name at string offset ${off} has no terminating NUL within ${limit - start} bytes (the string section's end or ${BTF_MAX_NAME_BYTES})`,
    );
  }
  return strings.toString('latin1', start, start + end);
}
