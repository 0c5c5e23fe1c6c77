/**
 * IPFIX (RFC 7011) messages → v2 rows, the collector's mirror of encoder.ts. Template and
 * options template sets define, redefine and withdraw templates per observation domain of an
 * exporter session (exporter-session.ts); data sets are read field by field through the
 * template's compiled plan (field-plan.ts) straight into a RecordBatchBuilder row: no object per
 * record or field. Rows gather per domain and are handed out in batches of `batchRows`, or
 * whatever a domain holds at `flush()`.
 *
 * Hostile or damaged input never throws: what cannot be read is counted by reason
 * ({@link IpfixDrop}) and skipped by the lengths the message gives, and every loop advances by at
 * least one byte (a set shorter than its header, or a template whose records take no bytes, is
 * refused), so no input can make the decoder spin. Data sets whose template is not known yet
 * (a UDP collector that started after the exporter sent its templates) are counted as
 * `data_before_template` and dropped: exporters resend templates over UDP (flowtap every 60 s),
 * and TCP sessions always start with them.
 *
 * Times: records may carry absolute times (seconds, milliseconds, NTP micro/nanoseconds), system
 * uptime milliseconds (relative to the systemInitTimeMilliseconds an options record or the record
 * itself gives; the message's export time until one is known) or microseconds before the export
 * time. A record with only a start or only an end time uses it for both; one with none gets
 * the export time.
 */
import type { RecordBatch } from '../../codec/record-batch.ts';
import {
  HealthFlag,
  RecordFlag,
  TunnelType,
  V2,
  V2_DNS_NAME_MAX,
  V2_RECORD_BYTES,
} from '../../codec/v2-layout.ts';
import { EtherType } from '../../model/names.ts';
import { TWO_POW_32 } from '../../model/u64.ts';
import { type ExporterSession, MAX_NAMES_PER_DOMAIN, type ObservationDomain } from './exporter-session.ts';
import { compileTemplate, FieldKind, type FieldSpec, type TemplatePlan, TimeSlot } from './field-plan.ts';
import {
  ENTERPRISE_BIT,
  IPFIX_VERSION,
  LAYER2_SEGMENT_VXLAN,
  MAX_INTERFACE_NAME_BYTES,
  MESSAGE_HEADER_BYTES,
  MIN_DATA_SET_ID,
  OPTIONS_TEMPLATE_SET_ID,
  SET_HEADER_BYTES,
  TEMPLATE_SET_ID,
  VARIABLE_LENGTH,
} from './templates.ts';

/** Why part of a message was not read; the unit counted is in each comment. */
export const IpfixDrop = {
  /** A datagram (or stream) shorter than a message header: the message. */
  SHORT_MESSAGE: 'short_message',
  /** Version is not 10 (NetFlow v5/v9 on the IPFIX port?): the message. */
  NOT_IPFIX: 'not_ipfix',
  /** Message length below the header's 16 bytes: the message (over TCP, the connection). */
  BAD_MESSAGE_LENGTH: 'bad_message_length',
  /** Message length past the bytes received: the message. */
  TRUNCATED_MESSAGE: 'truncated_message',
  /** A set length below 4 or past the message end: the rest of the message, counted once. */
  BAD_SET_LENGTH: 'bad_set_length',
  /** A template record that runs past its set or makes no sense: the rest of the template set. */
  BAD_TEMPLATE: 'bad_template',
  /** A template over the collector's template budget: the template. */
  TEMPLATE_LIMIT: 'template_limit',
  /** A data set whose template is unknown: the set. */
  DATA_BEFORE_TEMPLATE: 'data_before_template',
  /** A record whose fields run past its set: the rest of the set. */
  TRUNCATED_RECORD: 'truncated_record',
  /** A set id RFC 7011 reserves (0, 1, 4-255): the set. */
  RESERVED_SET: 'reserved_set',
  /** A message of an observation domain beyond the per-session limit: the message. */
  TOO_MANY_DOMAINS: 'too_many_domains',
} as const;
/** A drop reason. */
export type IpfixDropReason = (typeof IpfixDrop)[keyof typeof IpfixDrop];

/** Rows handed out at once per domain, by default. */
export const DEFAULT_BATCH_ROWS = 4096;
/** Template fields held across every session at most, by default (a few bytes each). */
export const DEFAULT_MAX_TEMPLATE_FIELDS = 1_000_000;
/** Observation domains one session may use. */
export const MAX_DOMAINS_PER_SESSION = 256;

/** Settings of an {@link IpfixDecoder}. */
export interface IpfixDecoderOptions {
  /** Counts what was not read. */
  drop(reason: IpfixDropReason): void;
  /** Takes each batch of decoded rows. */
  onBatch(batch: RecordBatch): void;
  /** Told of data records an exporter's sequence numbers say were sent but never arrived (RFC 7011 §10.3.2). */
  onMissingRecords?(count: number): void;
  batchRows?: number;
  maxTemplateFields?: number;
}

/** Seconds from the NTP epoch (1900) to the Unix epoch. */
const NTP_UNIX_OFFSET_S = 2_208_988_800;
const MS_PER_S = 1000;
const NS_PER_MS = 1_000_000;
const NS_PER_US = 1000;
const US_PER_S = 1_000_000;
const NS_PER_S = 1_000_000_000;
const TWO_POW_16 = 65_536;
/** How a time slot of the record being read was given (absolute, or relative: greater). */
const FORM_NONE = 0;
const FORM_ABSOLUTE = 1;
const FORM_SYS_UP_MS = 2;
const FORM_DELTA_US = 3;
const { START: SLOT_START, END: SLOT_END, REV_START: SLOT_REV_START, REV_END: SLOT_REV_END } = TimeSlot;
/** Row offset of each time slot. */
const SLOT_OFFSETS = [V2.FIRST_SEEN_NS, V2.LAST_SEEN_NS, V2.REV_FIRST_SEEN_NS, V2.REV_LAST_SEEN_NS];

/** Writes `seconds * 10^9 + nanos` as a u64 little-endian at `b[at]`, exactly for any real time. */
function writeNs(b: Buffer, at: number, seconds: number, nanos: number): void {
  // seconds = sh * 2^16 + sl; every product below stays under 2^53 for seconds < 2^36.
  const sh = Math.floor(seconds / TWO_POW_16);
  const sl = seconds - sh * TWO_POW_16;
  const x = sh * NS_PER_S;
  const y = sl * NS_PER_S + nanos;
  const xl = x % TWO_POW_16;
  const t = xl * TWO_POW_16 + y;
  const lo = t % TWO_POW_32;
  const hi = (x - xl) / TWO_POW_16 + (t - lo) / TWO_POW_32;
  b.writeUInt32LE(lo >>> 0, at);
  b.writeUInt32LE(hi >>> 0, at + 4);
}

/** The health flags the row's measured values imply (flowtap exports 0 for what it did not measure). */
function healthFlags(b: Buffer, o: number): number {
  const rtt =
    (b.readUInt32LE(o + V2.RTT_SAMPLES) |
      b.readUInt32LE(o + V2.RTT_LAST_NS) |
      b.readUInt32LE(o + V2.RTT_LAST_NS + 4)) !==
    0;
  const handshake =
    (b.readUInt32LE(o + V2.HANDSHAKE_RTT_NS) | b.readUInt32LE(o + V2.HANDSHAKE_RTT_NS + 4)) !== 0;
  return (rtt ? HealthFlag.RTT : 0) | (handshake ? HealthFlag.HANDSHAKE : 0);
}

/**
 * The DNS name at `m[p, p + len)` into the row at `o`: flowtap's exporter writes each of the
 * row's name bytes as one character of UTF-8 (U+0000-U+00FF), so a two-byte sequence of C2 or C3
 * is one byte back; anything else is kept as it comes, up to the bytes a row holds.
 */
function writeDnsName(m: Buffer, p: number, len: number, b: Buffer, o: number): void {
  const end = p + len;
  let n = 0;
  while (p < end && n < V2_DNS_NAME_MAX) {
    const c = m[p];
    if ((c === 0xc2 || c === 0xc3) && p + 1 < end && (m[p + 1] & 0xc0) === 0x80) {
      b[o + V2.DNS_NAME + n++] = ((c & 0x03) << 6) | (m[p + 1] & 0x3f);
      p += 2;
    } else {
      b[o + V2.DNS_NAME + n++] = c;
      p++;
    }
  }
  b[o + V2.DNS_NAME_LEN] = n;
}

function sameBytes(known: Uint8Array, m: Buffer, start: number, length: number): boolean {
  if (known.length !== length) return false;
  for (let k = 0; k < length; k++) if (known[k] !== m[start + k]) return false;
  return true;
}

/** Decodes IPFIX messages of any number of sessions into batches. Not reentrant. */
export class IpfixDecoder {
  readonly #drop: (reason: IpfixDropReason) => void;
  readonly #onBatch: (batch: RecordBatch) => void;
  readonly #onMissingRecords: (count: number) => void;
  readonly #batchRows: number;
  readonly #maxTemplateFields: number;
  #templateFields = 0;
  /** Rows decoded since the decoder was made. */
  #rowsDecoded = 0;
  /** Length of the variable-length field #variableLength read last. */
  #varLength = 0;
  /** Domains holding rows not handed out yet. */
  readonly #dirty = new Set<ObservationDomain>();
  // The record being read: its times by slot, family, interfaces, direction, agent, name.
  readonly #timeForm = new Uint8Array(4);
  readonly #timeA = new Float64Array(4);
  readonly #timeB = new Float64Array(4);
  #family = 0;
  #ipVersion = 0;
  #ingress = -1;
  #egress = -1;
  #direction = 0;
  #agentSeen = false;
  #nameStart = -1;
  #nameLength = 0;
  #recordInitMs = Number.NaN;
  /** Export time (Unix seconds) of the message being read. */
  #exportS = 0;

  constructor(options: IpfixDecoderOptions) {
    this.#drop = options.drop;
    this.#onBatch = options.onBatch;
    this.#onMissingRecords = options.onMissingRecords ?? (() => {});
    this.#batchRows = options.batchRows ?? DEFAULT_BATCH_ROWS;
    this.#maxTemplateFields = options.maxTemplateFields ?? DEFAULT_MAX_TEMPLATE_FIELDS;
  }

  /** Template fields held now, over every session. */
  get templateFields(): number {
    return this.#templateFields;
  }

  /**
   * Reads the message at `m[start, end)` of `session` (over UDP, one datagram; over TCP, the
   * bytes of one message as its header's length gave them). Returns the flows decoded.
   */
  decode(session: ExporterSession, m: Buffer, start: number, end: number): number {
    if (end - start < MESSAGE_HEADER_BYTES) {
      this.#drop(IpfixDrop.SHORT_MESSAGE);
      return 0;
    }
    if (m.readUInt16BE(start) !== IPFIX_VERSION) {
      this.#drop(IpfixDrop.NOT_IPFIX);
      return 0;
    }
    const length = m.readUInt16BE(start + 2);
    if (length < MESSAGE_HEADER_BYTES) {
      this.#drop(IpfixDrop.BAD_MESSAGE_LENGTH);
      return 0;
    }
    if (length > end - start) {
      this.#drop(IpfixDrop.TRUNCATED_MESSAGE);
      return 0;
    }
    this.#exportS = m.readUInt32BE(start + 4);
    const sequence = m.readUInt32BE(start + 8);
    const odid = m.readUInt32BE(start + 12);
    const domain = session.domain(odid, session.domains.size < MAX_DOMAINS_PER_SESSION);
    if (domain === undefined) {
      this.#drop(IpfixDrop.TOO_MANY_DOMAINS);
      return 0;
    }
    const messageEnd = start + length;
    let p = start + MESSAGE_HEADER_BYTES;
    const rowsBefore = this.#rowsDecoded;
    let dataRecords = 0;
    let countKnown = true;
    while (p < messageEnd) {
      if (messageEnd - p < SET_HEADER_BYTES) {
        this.#drop(IpfixDrop.BAD_SET_LENGTH);
        countKnown = false;
        break;
      }
      const setId = m.readUInt16BE(p);
      const setLength = m.readUInt16BE(p + 2);
      if (setLength < SET_HEADER_BYTES || setLength > messageEnd - p) {
        this.#drop(IpfixDrop.BAD_SET_LENGTH);
        countKnown = false;
        break;
      }
      const setEnd = p + setLength;
      const body = p + SET_HEADER_BYTES;
      if (setId === TEMPLATE_SET_ID) {
        this.#templateSet(domain, m, body, setEnd, false);
      } else if (setId === OPTIONS_TEMPLATE_SET_ID) {
        this.#templateSet(domain, m, body, setEnd, true);
      } else if (setId >= MIN_DATA_SET_ID) {
        const plan = domain.templates.get(setId);
        const records =
          plan !== undefined
            ? this.#dataSet(domain, plan, m, body, setEnd)
            : this.#optionsSet(domain, domain.optionsTemplates.get(setId), m, body, setEnd);
        if (records < 0) countKnown = false;
        else dataRecords += records;
      } else {
        this.#drop(IpfixDrop.RESERVED_SET);
      }
      p = setEnd;
    }
    this.#checkSequence(domain, sequence, dataRecords, countKnown);
    return this.#rowsDecoded - rowsBefore;
  }

  /** Hands out the rows every domain holds. */
  flush(): void {
    for (const domain of this.#dirty) {
      const batch = domain.takeBatch();
      if (batch !== undefined) this.#onBatch(batch);
    }
    this.#dirty.clear();
  }

  /** The session ended (its connection closed, or it was idle too long): hands out its rows, drops its templates. */
  closeSession(session: ExporterSession): void {
    for (const domain of session.domains.values()) {
      const batch = domain.takeBatch();
      if (batch !== undefined) this.#onBatch(batch);
      this.#dirty.delete(domain);
      this.#templateFields -= domain.templateFields();
      domain.templates.clear();
      domain.optionsTemplates.clear();
    }
    session.domains.clear();
  }

  #checkSequence(domain: ObservationDomain, sequence: number, records: number, countKnown: boolean): void {
    if (domain.nextSequence >= 0 && sequence !== domain.nextSequence) {
      const gap = (sequence - domain.nextSequence) >>> 0;
      // A number behind the expected one is a reordered or restarted stream, not a loss.
      if (gap < 2 ** 31) this.#onMissingRecords(gap);
    }
    domain.nextSequence = countKnown ? (sequence + records) >>> 0 : -1;
  }

  /** Reads the template records of a (options) template set at `m[p, end)`; a malformed one ends the set. */
  #templateSet(domain: ObservationDomain, m: Buffer, p: number, end: number, options: boolean): void {
    // Fewer than 4 bytes left is padding.
    while (end - p >= 4) {
      p = this.#templateRecord(domain, m, p, end, options);
      if (p < 0) {
        this.#drop(IpfixDrop.BAD_TEMPLATE);
        return;
      }
    }
  }

  /** Reads one template record at `p`; returns the position after it, or -1 when it is malformed. */
  #templateRecord(domain: ObservationDomain, m: Buffer, p: number, end: number, options: boolean): number {
    const id = m.readUInt16BE(p);
    const count = m.readUInt16BE(p + 2);
    p += 4;
    if (count === 0) {
      this.#withdraw(domain, id, options ? OPTIONS_TEMPLATE_SET_ID : TEMPLATE_SET_ID);
      return p;
    }
    if (options) {
      if (end - p < 2) return -1;
      const scope = m.readUInt16BE(p);
      p += 2;
      if (scope === 0 || scope > count) return -1;
    }
    if (id < MIN_DATA_SET_ID) return -1;
    const fields: FieldSpec[] = [];
    for (let f = 0; f < count; f++) {
      if (end - p < 4) return -1;
      const raw = m.readUInt16BE(p);
      const length = m.readUInt16BE(p + 2);
      p += 4;
      let enterprise = 0;
      if ((raw & ENTERPRISE_BIT) !== 0) {
        if (end - p < 4) return -1;
        enterprise = m.readUInt32BE(p);
        p += 4;
      }
      fields.push({ ie: raw & ~ENTERPRISE_BIT, length, enterprise });
    }
    const plan = compileTemplate(id, fields, options);
    // Records of no bytes would repeat forever in a data set.
    if (plan.minRecordBytes === 0) return -1;
    this.#define(domain, plan);
    return p;
  }

  /** Stores `plan`, replacing any template of its id, within the template budget. */
  #define(domain: ObservationDomain, plan: TemplatePlan): void {
    const old = domain.templates.get(plan.id) ?? domain.optionsTemplates.get(plan.id);
    const oldFields = old?.kinds.length ?? 0;
    if (this.#templateFields - oldFields + plan.kinds.length > this.#maxTemplateFields) {
      this.#drop(IpfixDrop.TEMPLATE_LIMIT);
      return;
    }
    this.#templateFields += plan.kinds.length - oldFields;
    // A template id names one template per domain, data or options.
    domain.templates.delete(plan.id);
    domain.optionsTemplates.delete(plan.id);
    (plan.options ? domain.optionsTemplates : domain.templates).set(plan.id, plan);
  }

  /** Template withdrawal (RFC 7011 §8.1): one id, or with the set's own id every template of the set's kind. */
  #withdraw(domain: ObservationDomain, id: number, setId: number): void {
    const templates = setId === OPTIONS_TEMPLATE_SET_ID ? domain.optionsTemplates : domain.templates;
    if (id === setId) {
      for (const t of templates.values()) this.#templateFields -= t.kinds.length;
      templates.clear();
      return;
    }
    const old = templates.get(id);
    if (old === undefined) return;
    this.#templateFields -= old.kinds.length;
    templates.delete(id);
  }

  /** Reads the options records of a set (only systemInitTimeMilliseconds is kept); -1 when unreadable. */
  #optionsSet(
    domain: ObservationDomain,
    plan: TemplatePlan | undefined,
    m: Buffer,
    p: number,
    end: number,
  ): number {
    if (plan === undefined) {
      this.#drop(IpfixDrop.DATA_BEFORE_TEMPLATE);
      return -1;
    }
    const { kinds, lengths } = plan;
    let records = 0;
    while (end - p >= plan.minRecordBytes) {
      for (let f = 0; f < kinds.length; f++) {
        let len = lengths[f];
        if (len === VARIABLE_LENGTH) {
          const at = this.#variableLength(m, p, end);
          if (at < 0) return this.#truncated();
          len = this.#varLength;
          p = at;
        }
        if (end - p < len) return this.#truncated();
        if (kinds[f] === FieldKind.SYSTEM_INIT_MS) {
          domain.systemInitMs = m.readUInt32BE(p) * TWO_POW_32 + m.readUInt32BE(p + 4);
        }
        p += len;
      }
      records++;
    }
    return records;
  }

  #truncated(): number {
    this.#drop(IpfixDrop.TRUNCATED_RECORD);
    return -1;
  }

  /** Length of the variable-length field at `p` (set in #varLength); returns where its value starts, or -1. */
  #variableLength(m: Buffer, p: number, end: number): number {
    if (p >= end) return -1;
    let len = m[p++];
    if (len === 255) {
      if (end - p < 2) return -1;
      len = m.readUInt16BE(p);
      p += 2;
    }
    this.#varLength = len;
    return p;
  }

  /** Reads the data records of a set into rows; returns their count, or -1 when one was truncated. */
  #dataSet(domain: ObservationDomain, plan: TemplatePlan, m: Buffer, p: number, end: number): number {
    let records = 0;
    while (end - p >= plan.minRecordBytes) {
      const next = this.#record(domain, plan, m, p, end);
      if (next < 0) {
        if (records > 0) this.#dirty.add(domain);
        return this.#truncated();
      }
      p = next;
      records++;
    }
    if (records > 0) this.#dirty.add(domain);
    return records;
  }

  /** Reads one data record at `p` into a new row; returns the position after it, or -1 (row dropped). */
  #record(domain: ObservationDomain, plan: TemplatePlan, m: Buffer, p: number, end: number): number {
    const rows = domain.rows;
    const o = rows.appendRow();
    const b = rows.bytes;
    this.#timeForm.fill(FORM_NONE);
    this.#family = 0;
    this.#ipVersion = 0;
    this.#ingress = -1;
    this.#egress = -1;
    this.#direction = 0;
    this.#agentSeen = false;
    this.#nameStart = -1;
    this.#recordInitMs = Number.NaN;
    const { kinds, lengths, targets, widths } = plan;
    for (let f = 0; f < kinds.length; f++) {
      let len = lengths[f];
      if (len === VARIABLE_LENGTH) {
        p = this.#variableLength(m, p, end);
        if (p < 0) {
          rows.dropLastRow();
          return -1;
        }
        len = this.#varLength;
      }
      if (end - p < len) {
        rows.dropLastRow();
        return -1;
      }
      switch (kinds[f]) {
        case FieldKind.SKIP:
          break;
        case FieldKind.UINT: {
          const at = o + targets[f];
          for (let k = 0; k < len; k++) b[at + k] = m[p + len - 1 - k];
          for (let k = len; k < widths[f]; k++) b[at + k] = 0;
          break;
        }
        case FieldKind.BYTES: {
          const at = o + targets[f];
          for (let k = 0; k < len; k++) b[at + k] = m[p + k];
          break;
        }
        case FieldKind.IPV4: {
          const at = o + targets[f];
          b[at + 10] = 0xff;
          b[at + 11] = 0xff;
          b[at + 12] = m[p];
          b[at + 13] = m[p + 1];
          b[at + 14] = m[p + 2];
          b[at + 15] = m[p + 3];
          this.#family = 4;
          break;
        }
        case FieldKind.IPV6: {
          const at = o + targets[f];
          for (let k = 0; k < 16; k++) b[at + k] = m[p + k];
          this.#family = 6;
          break;
        }
        case FieldKind.AGENT_IPV4: {
          this.#agentSeen = true;
          // 0.0.0.0 is how flowtap exports an agent without an address: leave it unset.
          if ((m[p] | m[p + 1] | m[p + 2] | m[p + 3]) !== 0) {
            const at = o + V2.AGENT_IP;
            b[at + 10] = 0xff;
            b[at + 11] = 0xff;
            b[at + 12] = m[p];
            b[at + 13] = m[p + 1];
            b[at + 14] = m[p + 2];
            b[at + 15] = m[p + 3];
          }
          break;
        }
        case FieldKind.AGENT_IPV6: {
          this.#agentSeen = true;
          const at = o + V2.AGENT_IP;
          for (let k = 0; k < 16; k++) b[at + k] = m[p + k];
          break;
        }
        case FieldKind.TOS:
          b[o + targets[f]] = m[p] >>> 2;
          break;
        case FieldKind.DSCP:
          b[o + targets[f]] = m[p] & 0x3f;
          break;
        case FieldKind.ICMP_TYPE_CODE:
          b[o + V2.ICMP_TYPE] = m[p];
          b[o + V2.ICMP_CODE] = m[p + 1];
          break;
        case FieldKind.INGRESS_INTERFACE:
          this.#ingress = this.#uint(m, p, len);
          break;
        case FieldKind.EGRESS_INTERFACE:
          this.#egress = this.#uint(m, p, len);
          break;
        case FieldKind.DIRECTION:
          this.#direction = m[p];
          b[o + V2.DIRECTION] = m[p];
          break;
        case FieldKind.IP_VERSION:
          this.#ipVersion = m[p];
          break;
        case FieldKind.INTERFACE_NAME: {
          let n = Math.min(len, MAX_INTERFACE_NAME_BYTES);
          // A fixed-length name is NUL-padded.
          while (n > 0 && m[p + n - 1] === 0) n--;
          this.#nameStart = p;
          this.#nameLength = n;
          break;
        }
        case FieldKind.LAYER2_SEGMENT:
          if (m[p] === LAYER2_SEGMENT_VXLAN) {
            b[o + V2.TUNNEL_TYPE] = TunnelType.VXLAN;
            b[o + V2.TUNNEL_ID] = m[p + 7];
            b[o + V2.TUNNEL_ID + 1] = m[p + 6];
            b[o + V2.TUNNEL_ID + 2] = m[p + 5];
          }
          break;
        case FieldKind.TIME_SECONDS:
          this.#setTime(targets[f], FORM_ABSOLUTE, m.readUInt32BE(p), 0);
          break;
        case FieldKind.TIME_MILLISECONDS: {
          const ms = m.readUInt32BE(p) * TWO_POW_32 + m.readUInt32BE(p + 4);
          const s = Math.floor(ms / MS_PER_S);
          this.#setTime(targets[f], FORM_ABSOLUTE, s, (ms - s * MS_PER_S) * NS_PER_MS);
          break;
        }
        case FieldKind.TIME_NTP: {
          const s = m.readUInt32BE(p) - NTP_UNIX_OFFSET_S;
          const nanos = Math.floor((m.readUInt32BE(p + 4) * NS_PER_S) / TWO_POW_32);
          this.#setTime(targets[f], FORM_ABSOLUTE, Math.max(s, 0), s < 0 ? 0 : nanos);
          break;
        }
        case FieldKind.TIME_SYS_UP:
          this.#setTime(targets[f], FORM_SYS_UP_MS, m.readUInt32BE(p), 0);
          break;
        case FieldKind.TIME_DELTA_US:
          this.#setTime(targets[f], FORM_DELTA_US, m.readUInt32BE(p), 0);
          break;
        case FieldKind.SYSTEM_INIT_MS:
          this.#recordInitMs = m.readUInt32BE(p) * TWO_POW_32 + m.readUInt32BE(p + 4);
          break;
        case FieldKind.DNS_NAME:
          writeDnsName(m, p, len, b, o);
          break;
      }
      p += len;
    }
    this.#finishRecord(domain, plan, m, o);
    this.#rowsDecoded++;
    return p;
  }

  #uint(m: Buffer, p: number, len: number): number {
    let v = 0;
    for (let k = 0; k < len; k++) v = v * 256 + m[p + k];
    return v;
  }

  #setTime(slot: number, form: number, a: number, b: number): void {
    this.#timeForm[slot] = form;
    this.#timeA[slot] = a;
    this.#timeB[slot] = b;
  }

  /** Fields that depend on several elements, or on none being there. */
  #finishRecord(domain: ObservationDomain, plan: TemplatePlan, m: Buffer, o: number): void {
    const b = domain.rows.bytes;
    if (b[o + V2.ETH_PROTOCOL] === 0 && b[o + V2.ETH_PROTOCOL + 1] === 0) {
      const family = this.#family !== 0 ? this.#family : this.#ipVersion;
      const etype = family === 6 ? EtherType.IPV6 : family === 4 ? EtherType.IPV4 : 0;
      b[o + V2.ETH_PROTOCOL] = etype & 0xff;
      b[o + V2.ETH_PROTOCOL + 1] = etype >>> 8;
    }
    if (!this.#agentSeen) b.set(domain.session.agentIp, o + V2.AGENT_IP);
    const ifIndex =
      this.#direction === 1 && this.#egress >= 0
        ? this.#egress
        : this.#ingress >= 0
          ? this.#ingress
          : Math.max(this.#egress, 0);
    b.writeUInt32LE(ifIndex >>> 0, o + V2.IF_INDEX);
    this.#writeTimes(b, o, domain);
    if (plan.reverse) b[o + V2.RECORD_FLAGS] |= RecordFlag.BIFLOW;
    if (plan.health) b[o + V2.HEALTH_FLAGS] = healthFlags(b, o);
    if (this.#nameStart >= 0 && this.#nameLength > 0) this.#name(domain, ifIndex, m, o);
    if (domain.rows.count >= this.#batchRows) {
      const batch = domain.takeBatch(true);
      if (batch !== undefined) this.#onBatch(batch);
    }
  }

  /** Resolves the record's times to Unix nanoseconds and writes them. */
  #writeTimes(b: Buffer, o: number, domain: ObservationDomain): void {
    const form = this.#timeForm;
    for (let slot = 0; slot < 4; slot++) if (form[slot] > FORM_ABSOLUTE) this.#toAbsolute(slot, domain);
    if (form[SLOT_START] === FORM_NONE && form[SLOT_END] === FORM_NONE) {
      this.#setTime(SLOT_START, FORM_ABSOLUTE, this.#exportS, 0);
    }
    this.#pairTimes(SLOT_START, SLOT_END);
    this.#pairTimes(SLOT_REV_START, SLOT_REV_END);
    for (let slot = 0; slot < 4; slot++) {
      if (form[slot] !== FORM_NONE) writeNs(b, o + SLOT_OFFSETS[slot], this.#timeA[slot], this.#timeB[slot]);
    }
  }

  /** Turns a relative time of `slot` into seconds and nanoseconds. */
  #toAbsolute(slot: number, domain: ObservationDomain): void {
    const A = this.#timeA;
    const B = this.#timeB;
    if (this.#timeForm[slot] === FORM_SYS_UP_MS) {
      const base = Number.isNaN(this.#recordInitMs) ? domain.systemInitMs : this.#recordInitMs;
      if (Number.isNaN(base)) {
        A[slot] = this.#exportS;
        B[slot] = 0;
      } else {
        const ms = base + A[slot];
        A[slot] = Math.floor(ms / MS_PER_S);
        B[slot] = (ms - A[slot] * MS_PER_S) * NS_PER_MS;
      }
    } else {
      const us = Math.max(this.#exportS * US_PER_S - A[slot], 0);
      A[slot] = Math.floor(us / US_PER_S);
      B[slot] = (us - A[slot] * US_PER_S) * NS_PER_US;
    }
    this.#timeForm[slot] = FORM_ABSOLUTE;
  }

  /** A start without an end (or the reverse) stands for both. */
  #pairTimes(start: number, end: number): void {
    const form = this.#timeForm;
    if (form[start] === form[end] || (form[start] !== FORM_NONE && form[end] !== FORM_NONE)) return;
    const [from, to] = form[start] === FORM_NONE ? [end, start] : [start, end];
    form[to] = FORM_ABSOLUTE;
    this.#timeA[to] = this.#timeA[from];
    this.#timeB[to] = this.#timeB[from];
  }

  /** Names `ifIndex` in the domain's batch from the record's name; a renamed interface starts a new batch. */
  #name(domain: ObservationDomain, ifIndex: number, m: Buffer, o: number): void {
    const start = this.#nameStart;
    const length = this.#nameLength;
    const known = domain.names.bytesOf(ifIndex);
    if (known === undefined) {
      if (domain.names.size < MAX_NAMES_PER_DOMAIN) domain.names.set(ifIndex, m, start, length);
      return;
    }
    if (sameBytes(known, m, start, length)) return;
    // The rows before this one keep the old name: they leave in their own batch.
    const row = Buffer.from(domain.rows.bytes.subarray(o, o + V2_RECORD_BYTES));
    domain.rows.dropLastRow();
    const batch = domain.rename(ifIndex);
    if (batch !== undefined) this.#onBatch(batch);
    domain.names.set(ifIndex, m, start, length);
    const rows = domain.rows;
    row.copy(rows.bytes, rows.appendRow());
  }
}
