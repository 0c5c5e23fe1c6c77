/**
 * IPFIX messages built by hand for the collector's tests: templates of any field list (other
 * exporters' elements, enterprise and variable-length fields), data records from byte parts,
 * and the malformed shapes a hostile exporter can send.
 */

/** A field specifier: element id, length (0xffff variable) and enterprise number. */
export type Field = readonly [ie: number, length: number, enterprise?: number];

/** A set of `setId` holding `body` (padded to `padTo` bytes when given). */
export function set(setId: number, body: Buffer, padTo = 0): Buffer {
  const length = Math.max(4 + body.length, padTo);
  const out = Buffer.alloc(length);
  out.writeUInt16BE(setId, 0);
  out.writeUInt16BE(length, 2);
  body.copy(out, 4);
  return out;
}

/** A template record (or an options template record with `scopeCount`). */
export function templateRecord(id: number, fields: readonly Field[], scopeCount?: number): Buffer {
  const parts: Buffer[] = [];
  const head = Buffer.alloc(scopeCount === undefined ? 4 : 6);
  head.writeUInt16BE(id, 0);
  head.writeUInt16BE(fields.length, 2);
  if (scopeCount !== undefined) head.writeUInt16BE(scopeCount, 4);
  parts.push(head);
  for (const [ie, length, enterprise] of fields) {
    const spec = Buffer.alloc(enterprise ? 8 : 4);
    spec.writeUInt16BE(enterprise ? ie | 0x8000 : ie, 0);
    spec.writeUInt16BE(length, 2);
    if (enterprise) spec.writeUInt32BE(enterprise, 4);
    parts.push(spec);
  }
  return Buffer.concat(parts);
}

/** A template set of the given records. */
export function templateSet(...records: Buffer[]): Buffer {
  return set(2, Buffer.concat(records));
}

/** An options template set of the given records. */
export function optionsTemplateSet(...records: Buffer[]): Buffer {
  return set(3, Buffer.concat(records));
}

/** Header fields of a message. */
export interface MessageHeader {
  exportTimeS?: number;
  sequence?: number;
  observationDomainId?: number;
  /** Length written in the header (default: the real length). */
  length?: number;
}

/** A message of `sets`. */
export function message(sets: readonly Buffer[], header: MessageHeader = {}): Buffer {
  const body = Buffer.concat(sets);
  const out = Buffer.alloc(16 + body.length);
  out.writeUInt16BE(10, 0);
  out.writeUInt16BE(header.length ?? out.length, 2);
  out.writeUInt32BE(header.exportTimeS ?? 1_700_000_000, 4);
  out.writeUInt32BE(header.sequence ?? 0, 8);
  out.writeUInt32BE(header.observationDomainId ?? 0, 12);
  body.copy(out, 16);
  return out;
}

/** Big-endian bytes of `value` in `bytes` bytes (value < 2^53). */
export function be(value: number, bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  let v = value;
  for (let k = bytes - 1; k >= 0; k--) {
    out[k] = v % 256;
    v = Math.floor(v / 256);
  }
  return out;
}

/** A variable-length field's value with its length prefix (1 byte, or 255 and 2 bytes). */
export function varField(value: Buffer): Buffer {
  const prefix = value.length < 255 ? be(value.length, 1) : Buffer.concat([be(255, 1), be(value.length, 2)]);
  return Buffer.concat([prefix, value]);
}

/** IPv4 dotted quad as 4 bytes. */
export function ipv4(text: string): Buffer {
  return Buffer.from(text.split('.').map(Number));
}
