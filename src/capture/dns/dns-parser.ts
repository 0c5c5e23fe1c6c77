/**
 * One DNS message (RFC 1035 §4.1) → what flowtap keeps of it: the header (id, flags, counts) and
 * the first question's name, as dotted text, lower-cased, its first 64 bytes. The offline half of
 * the parser the TC program will have; test/vectors/dns.ts holds the messages both must agree on.
 *
 * Hostile input is bounded, never trusted: counts must fit the message (a question takes at least
 * 5 bytes, a resource record 11); a name is at most 255 bytes on the wire; a compression pointer
 * must point strictly before the start of the labels being read, so a chain only moves backwards
 * and cannot loop (a pointer to itself or forwards is `bad-pointer`). The first question starts
 * at byte 12, so its pointers' targets lie in the header and strictly decrease: at most 12. The parser reads nothing outside `[start, end)`,
 * allocates nothing, and never throws: a message that breaks a rule gives the reason, which
 * callers count.
 *
 * The name is read in one loop over its bytes (label length bytes and label bytes alike), the
 * shape the kernel's verifier accepts: at most 255 steps plus one per pointer.
 */
import { DnsErrno, V2_DNS_NAME_MAX } from '../../codec/v2-layout.ts';

/** The message parsed. */
export const DNS_OK = 0;

/** Why a message did not parse; each has its name in {@link DNS_MALFORMED_REASONS}. */
export const DnsMalformed = {
  /** The message (or a TCP length prefix) ends before its 12-byte header does. */
  HEADER_TRUNCATED: 1,
  /** The counts need more bytes than the message has. */
  BAD_COUNTS: 2,
  /** The first question's name, type or class run past the end of the message. */
  QUESTION_TRUNCATED: 3,
  /** A label type that is neither a length (00) nor a pointer (11): 01 and 10 are not in use. */
  BAD_LABEL: 4,
  /**
   * A compression pointer that does not point strictly before the labels being read: a loop (to
   * itself or back into its own labels) or a jump forwards.
   */
  BAD_POINTER: 5,
  /** A name of more than 255 bytes on the wire. */
  NAME_TOO_LONG: 6,
} as const;

/** Names of the reasons, indexed by their number (index 0, DNS_OK, is not a reason). */
export const DNS_MALFORMED_REASONS = [
  'ok',
  'header-truncated',
  'bad-counts',
  'question-truncated',
  'bad-label',
  'bad-pointer',
  'name-too-long',
] as const;

/** The dns_errno a reason sets (netobserv's: EFAULT for a header cut short, EINVAL otherwise). */
export function dnsErrnoOf(reason: number): number {
  return reason === DnsMalformed.HEADER_TRUNCATED ? DnsErrno.EFAULT : DnsErrno.EINVAL;
}

/** True for the reasons that mean "the bytes ended": a capture's snap length may be the cause. */
export function isTruncation(reason: number): boolean {
  return reason === DnsMalformed.HEADER_TRUNCATED || reason === DnsMalformed.QUESTION_TRUNCATED;
}

/** Bytes of the length prefix of a DNS message over TCP (RFC 1035 §4.2.2). */
export const TCP_LENGTH_PREFIX_BYTES = 2;

const HEADER_BYTES = 12;
/** Pointers a first question's name can follow: their targets strictly decrease within the header. */
const MAX_POINTERS = HEADER_BYTES;
/** QTYPE and QCLASS after a question's name. */
const QUESTION_FIXED_BYTES = 4;
/** The smallest question: the root name (1 byte), type and class. */
const MIN_QUESTION_BYTES = 5;
/** The smallest resource record: the root name, type, class, TTL and RDLENGTH. */
const MIN_RECORD_BYTES = 11;
/** Longest name on the wire, length bytes and the final root included (RFC 1035 §3.1). */
const MAX_NAME_WIRE_BYTES = 255;
const QR_BIT = 0x8000;
const LABEL_TYPE_MASK = 0xc0;
const LABEL_POINTER = 0xc0;
const DOT = 0x2e;
const UPPER_A = 0x41;
const UPPER_Z = 0x5a;
const TO_LOWER = 0x20;

/**
 * The result of the latest parse, one object reused for every message (parsers make no object
 * per packet). Fields a failed parse did not reach keep their reset values.
 */
export class DnsMessage {
  id = 0;
  /** The flags word: QR (bit 15), opcode, AA, TC, RD, RA, Z, AD, CD, rcode (bits 0..3). */
  flags = 0;
  qdcount = 0;
  ancount = 0;
  nscount = 0;
  arcount = 0;
  /** Bytes of the message: its declared length (UDP payload, TCP length prefix). */
  length = 0;
  /** Whether the header was read (the id and flags are meaningful). */
  hasHeader = false;
  /** Whether a first question's name was read into `name`. */
  hasName = false;
  /** Bytes of `name` in use. */
  nameLength = 0;
  /** The name was longer than the bytes kept. */
  nameTruncated = false;
  /** The first question's name: dotted, lower-cased, no final dot. */
  readonly name = new Uint8Array(V2_DNS_NAME_MAX);

  /** QR bit: a response rather than a query. */
  get isResponse(): boolean {
    return (this.flags & QR_BIT) !== 0;
  }

  /** The name as text (tests and tools; latin1, one character per byte). */
  nameText(): string {
    return Buffer.from(this.name.buffer, this.name.byteOffset, this.nameLength).toString('latin1');
  }

  reset(): void {
    this.id = 0;
    this.flags = 0;
    this.qdcount = 0;
    this.ancount = 0;
    this.nscount = 0;
    this.arcount = 0;
    this.length = 0;
    this.hasHeader = false;
    this.hasName = false;
    this.nameLength = 0;
    this.nameTruncated = false;
  }
}

/**
 * Parses the DNS message of `length` bytes starting at `data[start]`, of which the bytes before
 * `end` are available (a capture may hold fewer), into `out`. Returns DNS_OK or a DnsMalformed
 * reason.
 */
export function parseDnsMessage(
  data: Uint8Array,
  start: number,
  end: number,
  length: number,
  out: DnsMessage,
): number {
  out.reset();
  out.length = length;
  const limit = Math.min(end, start + length);
  if (length < HEADER_BYTES || limit - start < HEADER_BYTES) return DnsMalformed.HEADER_TRUNCATED;
  out.id = (data[start] << 8) | data[start + 1];
  out.flags = (data[start + 2] << 8) | data[start + 3];
  out.qdcount = (data[start + 4] << 8) | data[start + 5];
  out.ancount = (data[start + 6] << 8) | data[start + 7];
  out.nscount = (data[start + 8] << 8) | data[start + 9];
  out.arcount = (data[start + 10] << 8) | data[start + 11];
  out.hasHeader = true;
  const needed =
    out.qdcount * MIN_QUESTION_BYTES + (out.ancount + out.nscount + out.arcount) * MIN_RECORD_BYTES;
  if (needed > length - HEADER_BYTES) return DnsMalformed.BAD_COUNTS;
  if (out.qdcount === 0) return DNS_OK;
  return readName(data, start, limit, out);
}

/**
 * Reads the name at offset 12 of the message at `data[start]` (bytes available up to `limit`)
 * into `out.name`, then checks its type and class fit.
 */
function readName(data: Uint8Array, start: number, limit: number, out: DnsMessage): number {
  const name = out.name;
  let at = start + HEADER_BYTES;
  /** Where the labels being read began: a pointer must point before it. */
  let segmentStart = at;
  /** Where the question continues after the name: past its first pointer, or its final 0. */
  let after = -1;
  let wireBytes = 0;
  let text = 0;
  /** Label bytes still to copy; 0 when the next byte is a length or a pointer. */
  let inLabel = 0;
  for (let step = 0; step <= MAX_NAME_WIRE_BYTES + MAX_POINTERS; step++) {
    if (at >= limit) return DnsMalformed.QUESTION_TRUNCATED;
    const byte = data[at];
    if (inLabel > 0) {
      if (text < V2_DNS_NAME_MAX) {
        name[text++] = byte >= UPPER_A && byte <= UPPER_Z ? byte | TO_LOWER : byte;
      } else {
        out.nameTruncated = true;
      }
      inLabel--;
      at++;
      continue;
    }
    const type = byte & LABEL_TYPE_MASK;
    if (type === LABEL_POINTER) {
      if (at + 1 >= limit) return DnsMalformed.QUESTION_TRUNCATED;
      const target = start + (((byte & ~LABEL_TYPE_MASK) << 8) | data[at + 1]);
      if (target >= segmentStart) return DnsMalformed.BAD_POINTER;
      if (after < 0) after = at + 2;
      at = target;
      segmentStart = target;
      continue;
    }
    if (type !== 0) return DnsMalformed.BAD_LABEL;
    wireBytes += byte + 1;
    if (wireBytes > MAX_NAME_WIRE_BYTES) return DnsMalformed.NAME_TOO_LONG;
    if (byte === 0) {
      if (after < 0) after = at + 1;
      if (after + QUESTION_FIXED_BYTES > limit) return DnsMalformed.QUESTION_TRUNCATED;
      out.nameLength = text;
      out.hasName = true;
      return DNS_OK;
    }
    if (wireBytes > 1 + byte) {
      // Not the first label: a dot before it.
      if (text < V2_DNS_NAME_MAX) name[text++] = DOT;
      else out.nameTruncated = true;
    }
    inLabel = byte;
    at++;
  }
  // 255 wire bytes take at most 255 steps, plus one per pointer: a name that has not ended by
  // then is too long (the loop's bound, as the kernel's verifier needs one).
  return DnsMalformed.NAME_TOO_LONG;
}

/**
 * Parses the DNS message a transport payload `data[start, end)` carries: over UDP the whole
 * payload of `payloadLength` bytes (the UDP header's length minus 8, which leaves out Ethernet
 * padding); over TCP the message after the 2-byte length prefix, of the length it gives.
 */
export function parseDnsPayload(
  data: Uint8Array,
  start: number,
  end: number,
  payloadLength: number,
  tcp: boolean,
  out: DnsMessage,
): number {
  if (!tcp) return parseDnsMessage(data, start, end, payloadLength, out);
  if (payloadLength < TCP_LENGTH_PREFIX_BYTES || end - start < TCP_LENGTH_PREFIX_BYTES) {
    out.reset();
    return DnsMalformed.HEADER_TRUNCATED;
  }
  const length = (data[start] << 8) | data[start + 1];
  return parseDnsMessage(data, start + TCP_LENGTH_PREFIX_BYTES, end, length, out);
}
