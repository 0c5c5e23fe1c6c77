/**
 * The `json` export's encoder: rows of a batch straight to JSON-lines bytes, in exactly the text
 * `flowToJson` (src/model/flow.ts) gives the row's Flow object, without building the object, its
 * field views or a string per line. A read of a capture prints tens of thousands of flows a second,
 * and their strings were most of what the young generation collected (and what made it grow).
 * test/export/json-rows.test.ts holds the two forms together on flows using every field: a field
 * `flowToJson` prints must be printed here too.
 */
import { type RecordBatch, readDns, rowHasHealth } from '../codec/record-batch.ts';
import { HealthFlag, V2, V2_MAX_CROSSED, V2_RECORD_BYTES } from '../codec/v2-layout.ts';
import { type DropReasonNames, type DropReasonSource, NUMERIC_DROP_REASONS } from '../model/drop-reasons.ts';
import { dnsJson, identityJson } from '../model/flow.ts';
import { isIcmpProtocol } from '../model/icmp.ts';
import { formatIp, formatIpv6, isIpv4Mapped } from '../model/ip.ts';
import { directionName, EtherType, transportProtocolName } from '../model/names.ts';
import { rfc3339Seconds } from '../model/time.ts';
import { TWO_POW_32 } from '../model/u64.ts';

/** Bytes a line takes at most besides its interface name (IPv6 text, 2^53 counters, times). */
const LINE_MAX_BYTES_BESIDES_NAME = 768;
/** Size of a new output buffer: about LINES_PER_WRITE lines. */
const INITIAL_OUT_BYTES = 128 * 1024;
const NS_PER_S = 1e9;
const TWO_POW_16 = 65_536;

function ascii(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

const T_ETYPE = ascii('{"Etype":');
const T_DIRECTION = ascii(',"Direction":"');
const T_SRC_MAC = ascii('","DataLink":{"SrcMac":"');
const T_DST_MAC = ascii('","DstMac":"');
const T_SRC_ADDR = ascii('"},"Network":{"SrcAddr":"');
const T_DST_ADDR = ascii('","DstAddr":"');
const T_SRC_PORT = ascii('"},"Transport":{"SrcPort":');
const T_DST_PORT = ascii(',"DstPort":');
const T_PROTO = ascii(',"Proto":"');
const T_BYTES = ascii('"},"Bytes":');
const T_START = ascii(',"TimeFlowStart":"');
const T_END = ascii('","TimeFlowEnd":"');
const T_INTERFACE = ascii('","Interface":');
const T_PACKETS = ascii(',"Packets":');
const T_TCP_FLAGS = ascii(',"TcpFlags":');
const T_DSCP = ascii(',"Dscp":');
const T_ICMP_TYPE = ascii(',"IcmpType":');
const T_ICMP_CODE = ascii(',"IcmpCode":');
const T_AGENT_IP = ascii(',"AgentIP":"');
const T_INTERFACES = ascii(',"Interfaces":[');
const T_IF_DIRECTIONS = ascii('],"IfDirections":[');
const T_COMMA = ascii(',');
const T_CLOSE_LIST = ascii(']');
/** Bytes of the crossed lists besides the names: the two keys and brackets. */
const CROSSED_FIXED_BYTES = 40;
/** Bytes per crossed entry besides its name: two commas and a direction of up to 3 digits. */
const CROSSED_BYTES_PER_ENTRY = 5;
const T_QUOTE = ascii('"');
const T_RTT_LAST = ascii(',"TimeFlowRttNs":');
const T_RTT_MIN = ascii(',"TimeFlowRttMinNs":');
const T_RTT_MAX = ascii(',"TimeFlowRttMaxNs":');
const T_HANDSHAKE = ascii(',"TimeHandshakeRttNs":');
const T_DROP_BYTES = ascii(',"PktDropBytes":');
const T_DROP_PACKETS = ascii(',"PktDropPackets":');
const T_DROP_FLAGS = ascii(',"PktDropLatestFlags":');
const T_DROP_STATE = ascii(',"PktDropLatestState":');
const T_DROP_CAUSE = ascii(',"PktDropLatestDropCause":');
const T_RETRANS_PACKETS = ascii(',"PktRetransPackets":');
const T_RETRANS_BYTES = ascii(',"PktRetransBytes":');
/** Bytes of the health fields besides the two names: keys and eleven numbers of up to 20 digits. */
const HEALTH_MAX_BYTES_BESIDES_NAMES = 512;
/** High word of the smallest u64 above 2^53: below it a u64 prints exactly through a double. */
const SAFE_HIGH_WORD = 0x200000;
const T_END_LINE = ascii('}\n');

const HEX_DIGITS = ascii('0123456789abcdef');
const DIRECTION_TEXT = [0, 1, 2].map((d) => ascii(directionName(d)));
const PROTOCOL_TEXT = Array.from({ length: 256 }, (_, p) => ascii(transportProtocolName(p)));

/**
 * Writes rows as JSON lines into buffers it lends out: `encode` returns bytes that stay valid
 * until they are handed back with `release` (once the stream has written them), and a released
 * buffer is reused by a later `encode`, so a steady export allocates nothing. Bytes released
 * twice, or not from this encoder, are not taken back.
 */
export class JsonRowEncoder {
  /** Released buffers, whole. */
  readonly #free: Buffer[] = [];
  /** Memory of the buffers `encode` has lent and not had back. */
  readonly #lent = new WeakSet<ArrayBufferLike>();
  /** Interface names as JSON string bytes; names are few, so each is escaped once. */
  readonly #names = new Map<string, Uint8Array>();
  #out: Buffer = Buffer.alloc(0);
  #at = 0;
  readonly #agentIpKey = new Uint8Array(16);
  #agentIpJson: Uint8Array | undefined;
  readonly #dropReasonSource: DropReasonSource;
  #dropReasons: DropReasonNames | undefined;
  /** JSON string bytes of drop reasons and TCP states: the kernel has a few hundred of each. */
  readonly #causeJson = new Map<number, Uint8Array>();
  readonly #stateJson = new Map<number, Uint8Array>();

  /** @param dropReasons names of the kernel's drop reasons, asked for at the first drop written. */
  constructor(dropReasons: DropReasonSource = () => NUMERIC_DROP_REASONS) {
    this.#dropReasonSource = dropReasons;
  }

  /**
   * The JSON lines (each ending in a newline) of rows `start` to `end` of `batch`, in a buffer
   * lent to the caller until `release`.
   */
  encode(batch: RecordBatch, start: number, end: number): Buffer {
    this.#out = this.#free.pop() ?? Buffer.allocUnsafeSlow(INITIAL_OUT_BYTES);
    this.#at = 0;
    for (let i = start; i < end; i++) this.#row(batch, i);
    this.#lent.add(this.#out.buffer);
    return this.#out.subarray(0, this.#at);
  }

  /** Hands back bytes `encode` returned: nothing reads them any more. */
  release(bytes: Buffer): void {
    if (!this.#lent.has(bytes.buffer)) return;
    this.#lent.delete(bytes.buffer);
    // encode's buffers are unpooled (allocUnsafeSlow): each owns its whole memory.
    this.#free.push(Buffer.from(bytes.buffer));
  }

  #row(batch: RecordBatch, i: number): void {
    const b = batch.bytes;
    const o = i * V2_RECORD_BYTES;
    const name = this.#nameJson(batch.interfaces.nameOf(b.readUInt32LE(o + V2.IF_INDEX)));
    this.#reserve(LINE_MAX_BYTES_BESIDES_NAME + name.length);
    const etype = b[o + V2.ETH_PROTOCOL] | (b[o + V2.ETH_PROTOCOL + 1] << 8);
    const proto = b[o + V2.TRANSPORT_PROTOCOL];
    this.#put(T_ETYPE);
    this.#uint(etype);
    this.#put(T_DIRECTION);
    this.#put(DIRECTION_TEXT[Math.min(b[o + V2.DIRECTION], 2)]);
    this.#put(T_SRC_MAC);
    this.#mac(b, o + V2.SRC_MAC);
    this.#put(T_DST_MAC);
    this.#mac(b, o + V2.DST_MAC);
    this.#put(T_SRC_ADDR);
    this.#ip(b, o + V2.SRC_ADDR, etype);
    this.#put(T_DST_ADDR);
    this.#ip(b, o + V2.DST_ADDR, etype);
    this.#put(T_SRC_PORT);
    this.#uint(b[o + V2.SRC_PORT] | (b[o + V2.SRC_PORT + 1] << 8));
    this.#put(T_DST_PORT);
    this.#uint(b[o + V2.DST_PORT] | (b[o + V2.DST_PORT + 1] << 8));
    this.#put(T_PROTO);
    this.#put(PROTOCOL_TEXT[proto]);
    this.#put(T_BYTES);
    this.#uint(b.readUInt32LE(o + V2.BYTES) + b.readUInt32LE(o + V2.BYTES + 4) * TWO_POW_32);
    this.#put(T_START);
    this.#time(b, o + V2.FIRST_SEEN_NS);
    this.#put(T_END);
    this.#time(b, o + V2.LAST_SEEN_NS);
    this.#put(T_INTERFACE);
    this.#put(name);
    this.#put(T_PACKETS);
    this.#uint(b.readUInt32LE(o + V2.PACKETS) + b.readUInt32LE(o + V2.PACKETS + 4) * TWO_POW_32);
    const tcpFlags = b[o + V2.TCP_FLAGS] | (b[o + V2.TCP_FLAGS + 1] << 8);
    if (tcpFlags !== 0) {
      this.#put(T_TCP_FLAGS);
      this.#uint(tcpFlags);
    }
    const dscp = b[o + V2.DSCP];
    if (dscp !== 0) {
      this.#put(T_DSCP);
      this.#uint(dscp);
    }
    if (isIcmpProtocol(proto)) {
      this.#put(T_ICMP_TYPE);
      this.#uint(b[o + V2.ICMP_TYPE]);
      this.#put(T_ICMP_CODE);
      this.#uint(b[o + V2.ICMP_CODE]);
    }
    if (hasRareIdentity(b, o)) {
      // VLANs, tunnels, reverse counters: rare enough to go through the object.
      const text = Buffer.from(identityJson(batch.flow(i), batch.interfaces), 'utf8');
      this.#reserve(text.length + T_END_LINE.length);
      this.#put(text);
    } else {
      if (!isAllZero(b, o + V2.AGENT_IP)) {
        this.#put(T_AGENT_IP);
        this.#put(this.#agentIpText(b, o + V2.AGENT_IP));
        this.#put(T_QUOTE);
      }
      // The live datapath lists the interfaces crossed on every flow (dedup is on by default).
      this.#crossed(batch, o);
    }
    if (rowHasHealth(b, o)) this.#health(b, o);
    const dns = readDns(b, o);
    if (dns !== undefined) {
      // DNS flows are a few of all: their fields go through the FlowDns object.
      const text = Buffer.from(dnsJson(dns), 'utf8');
      this.#reserve(text.length + T_END_LINE.length);
      this.#put(text);
    }
    this.#put(T_END_LINE);
  }

  /** The health fields of the row at `o`, as `healthJson` prints them. */
  #health(b: Buffer, o: number): void {
    const flags = b[o + V2.HEALTH_FLAGS];
    const dropPackets = this.#u64Number(b, o + V2.DROP_PACKETS);
    let cause: Uint8Array | undefined;
    let state: Uint8Array | undefined;
    if (dropPackets !== 0) {
      cause = this.#kernelNameJson(this.#causeJson, b.readUInt32LE(o + V2.DROP_LATEST_CAUSE), (n, c) =>
        n.kernelNameOf(c),
      );
      const tcpState = b[o + V2.DROP_LATEST_STATE];
      if (tcpState !== 0)
        state = this.#kernelNameJson(this.#stateJson, tcpState, (n, s) => n.tcpStateName(s));
    }
    this.#reserve(
      HEALTH_MAX_BYTES_BESIDES_NAMES + (cause?.length ?? 0) + (state?.length ?? 0) + T_END_LINE.length,
    );
    if ((flags & HealthFlag.RTT) !== 0) {
      this.#put(T_RTT_LAST);
      this.#u64(b, o + V2.RTT_LAST_NS);
      this.#put(T_RTT_MIN);
      this.#u64(b, o + V2.RTT_MIN_NS);
      this.#put(T_RTT_MAX);
      this.#u64(b, o + V2.RTT_MAX_NS);
    }
    if ((flags & HealthFlag.HANDSHAKE) !== 0) {
      this.#put(T_HANDSHAKE);
      this.#u64(b, o + V2.HANDSHAKE_RTT_NS);
    }
    if (cause !== undefined) {
      this.#put(T_DROP_BYTES);
      this.#uint(this.#u64Number(b, o + V2.DROP_BYTES));
      this.#put(T_DROP_PACKETS);
      this.#uint(dropPackets);
      this.#put(T_DROP_FLAGS);
      this.#uint(b.readUInt16LE(o + V2.DROP_LATEST_FLAGS));
      if (state !== undefined) {
        this.#put(T_DROP_STATE);
        this.#put(state);
      }
      this.#put(T_DROP_CAUSE);
      this.#put(cause);
    }
    const retransPackets = this.#u64Number(b, o + V2.RETRANS_PACKETS);
    if (retransPackets !== 0) {
      this.#put(T_RETRANS_PACKETS);
      this.#uint(retransPackets);
      this.#put(T_RETRANS_BYTES);
      this.#uint(this.#u64Number(b, o + V2.RETRANS_BYTES));
    }
  }

  /** JSON string bytes of the name `nameOf` gives `value`, kept in `cache`. */
  #kernelNameJson(
    cache: Map<number, Uint8Array>,
    value: number,
    nameOf: (names: DropReasonNames, value: number) => string,
  ): Uint8Array {
    let json = cache.get(value);
    if (json === undefined) {
      this.#dropReasons ??= this.#dropReasonSource();
      json = Buffer.from(JSON.stringify(nameOf(this.#dropReasons, value)), 'utf8');
      if (cache.size < 4096) cache.set(value, json);
    }
    return json;
  }

  /** The u64 at `at` as a number, as the Flow object holds counters (rounded above 2^53). */
  #u64Number(b: Buffer, at: number): number {
    return b.readUInt32LE(at) + b.readUInt32LE(at + 4) * TWO_POW_32;
  }

  /** The u64 at `at` in decimal, exact at any size (as a bigint prints). */
  #u64(b: Buffer, at: number): void {
    const hi = b.readUInt32LE(at + 4);
    if (hi < SAFE_HIGH_WORD) {
      this.#uint(b.readUInt32LE(at) + hi * TWO_POW_32);
      return;
    }
    const text = b.readBigUInt64LE(at).toString();
    for (let i = 0; i < text.length; i++) this.#out[this.#at++] = text.charCodeAt(i);
  }

  /** `"Interfaces":[...]` and `"IfDirections":[...]` of the row at `o`, as `identityJson` prints them. */
  #crossed(batch: RecordBatch, o: number): void {
    const b = batch.bytes;
    const count = Math.min(b[o + V2.CROSSED_COUNT], V2_MAX_CROSSED);
    if (count === 0) return;
    const nameAt = (k: number) =>
      this.#nameJson(batch.interfaces.nameOf(b.readUInt32LE(o + V2.CROSSED_IF_INDEX + 4 * k)));
    let bytes = CROSSED_FIXED_BYTES;
    for (let k = 0; k < count; k++) bytes += nameAt(k).length + CROSSED_BYTES_PER_ENTRY;
    this.#reserve(bytes);
    this.#put(T_INTERFACES);
    for (let k = 0; k < count; k++) {
      if (k > 0) this.#put(T_COMMA);
      this.#put(nameAt(k));
    }
    this.#put(T_IF_DIRECTIONS);
    for (let k = 0; k < count; k++) {
      if (k > 0) this.#put(T_COMMA);
      this.#uint(b[o + V2.CROSSED_DIRECTION + k]);
    }
    this.#put(T_CLOSE_LIST);
  }

  /** The text of the agent address at `at`: one address per agent, so the last one is kept. */
  #agentIpText(b: Buffer, at: number): Uint8Array {
    const key = this.#agentIpKey;
    let same = true;
    for (let k = 0; k < 16 && same; k++) same = key[k] === b[at + k];
    if (!same || this.#agentIpJson === undefined) {
      key.set(b.subarray(at, at + 16));
      this.#agentIpJson = ascii(formatIp(key, 0, 0));
    }
    return this.#agentIpJson;
  }

  #nameJson(name: string): Uint8Array {
    let json = this.#names.get(name);
    if (json === undefined) {
      json = Buffer.from(JSON.stringify(name), 'utf8');
      if (this.#names.size < 4096) this.#names.set(name, json);
    }
    return json;
  }

  /** Room for `bytes` more bytes; a full buffer is replaced by one twice as large. */
  #reserve(bytes: number): void {
    if (this.#at + bytes <= this.#out.length) return;
    const grown = Buffer.allocUnsafeSlow(Math.max(INITIAL_OUT_BYTES, (this.#at + bytes) * 2));
    this.#out.copy(grown, 0, 0, this.#at);
    this.#out = grown;
  }

  #put(text: Uint8Array): void {
    const out = this.#out;
    let at = this.#at;
    for (let k = 0; k < text.length; k++) out[at++] = text[k];
    this.#at = at;
  }

  /** A whole number in decimal, as JavaScript prints it (a u64 above 2^53 is rounded as a double). */
  #uint(value: number): void {
    const out = this.#out;
    if (value > Number.MAX_SAFE_INTEGER) {
      const text = String(value); // below 2^64 < 10^21: digits, no exponent
      for (let i = 0; i < text.length; i++) out[this.#at++] = text.charCodeAt(i);
      return;
    }
    let digits = 1;
    for (let v = value; v >= 10; v = Math.floor(v / 10)) digits++;
    let v = value;
    for (let k = this.#at + digits - 1; k >= this.#at; k--) {
      const q = Math.floor(v / 10);
      out[k] = 48 + (v - q * 10);
      v = q;
    }
    this.#at += digits;
  }

  #mac(b: Buffer, at: number): void {
    const out = this.#out;
    let k = this.#at;
    for (let i = 0; i < 6; i++) {
      if (i > 0) out[k++] = 58; // ':'
      out[k++] = HEX_DIGITS[b[at + i] >>> 4];
      out[k++] = HEX_DIGITS[b[at + i] & 15];
    }
    this.#at = k;
  }

  /** As `formatIp`: dotted IPv4 for a mapped or empty address of a non-IPv6 flow, else RFC 5952. */
  #ip(b: Buffer, at: number, etype: number): void {
    if (etype !== EtherType.IPV6 && (isIpv4Mapped(b, at) || isAllZero(b, at))) {
      for (let i = 12; i < 16; i++) {
        if (i > 12) this.#out[this.#at++] = 46; // '.'
        this.#uint(b[at + i]);
      }
      return;
    }
    const text = formatIpv6(b, at);
    const out = this.#out;
    let k = this.#at;
    for (let i = 0; i < text.length; i++) out[k++] = text.charCodeAt(i);
    this.#at = k;
  }

  /** As `formatRfc3339Nano`, from the u64 nanoseconds at `at`, divided exactly 16 bits at a time. */
  #time(b: Buffer, at: number): void {
    const lo = b.readUInt32LE(at);
    const hi = b.readUInt32LE(at + 4);
    // Long division of the four 16-bit digits by 10^9; each step's dividend is below 2^46: exact.
    let current = hi >>> 16;
    let seconds = Math.floor(current / NS_PER_S);
    let rest = current - seconds * NS_PER_S;
    current = rest * TWO_POW_16 + (hi & 0xffff);
    let q = Math.floor(current / NS_PER_S);
    seconds = seconds * TWO_POW_16 + q;
    rest = current - q * NS_PER_S;
    current = rest * TWO_POW_16 + (lo >>> 16);
    q = Math.floor(current / NS_PER_S);
    seconds = seconds * TWO_POW_16 + q;
    rest = current - q * NS_PER_S;
    current = rest * TWO_POW_16 + (lo & 0xffff);
    q = Math.floor(current / NS_PER_S);
    seconds = seconds * TWO_POW_16 + q;
    rest = current - q * NS_PER_S;
    const base = rfc3339Seconds(seconds);
    const out = this.#out;
    let k = this.#at;
    for (let i = 0; i < base.length; i++) out[k++] = base.charCodeAt(i);
    if (rest !== 0) {
      // The fraction's nine digits with trailing zeros dropped, as Go's RFC3339Nano prints it.
      let digits = 9;
      let fraction = rest;
      while (fraction % 10 === 0) {
        fraction /= 10;
        digits--;
      }
      out[k++] = 46; // '.'
      for (let d = digits - 1; d >= 0; d--) {
        out[k + d] = 48 + (fraction % 10);
        fraction = Math.floor(fraction / 10);
      }
      k += digits;
    }
    out[k++] = 90; // 'Z'
    this.#at = k;
  }
}

/** Whether the row has an identity field besides the agent address and the crossed list (see `identityJson`). */
function hasRareIdentity(b: Buffer, o: number): boolean {
  return (
    b.readUInt32LE(o + V2.VLAN_OUTER) !== 0 || b[o + V2.TUNNEL_TYPE] !== 0 || b[o + V2.RECORD_FLAGS] !== 0
  );
}

function isAllZero(b: Buffer, at: number): boolean {
  for (let i = 0; i < 16; i++) if (b[at + i] !== 0) return false;
  return true;
}
