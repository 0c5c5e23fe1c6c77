/**
 * How two records of one flow become one record: the single rule every stage that merges applies
 * (the map drain folding per-CPU values, the accounter's flow table folding batches).
 *
 * - bytes and packets add, as u64 with carry;
 * - first-seen is the earlier time, last-seen the later;
 * - TCP flags are ORed;
 * - DSCP is that of the flow's latest packet: the record with the greater last-seen time; when
 *   both were last seen at the same nanosecond, the record merged in (the later arrival) wins;
 * - a record without a tunnel never clears one (a flow seen both encapsulated on the underlay and
 *   plain on the overlay device keeps its tunnel); of two records with tunnels, that of the greater
 *   last-seen wins, so which of two different tunnels a flow keeps depends on merge order;
 * - the interfaces crossed are unioned in first-seen order: the entries of the record with the
 *   earlier first-seen come first (at equal first-seen, the stored record's), then the other's
 *   new ones, up to FLOWTAP_MAX_CROSSED; the kernel's dedup MACs come from that earlier record.
 *
 * Otherwise the result depends on arrival order only between records stamped at the same
 * nanosecond, and in the order of the crossed entries after the first.
 * The user section (agent address, reverse counters) is written after accounting and not merged.
 * Health sections (struct flow_health) merge by {@link mergeFlowHealth}, DNS sections
 * (struct flow_dns) by {@link mergeFlowDns}.
 */
import { TWO_POW_32 } from '../model/u64.ts';
import {
  DnsFlag,
  HealthFlag,
  V2_DNS_NAME_MAX,
  V2_DNS_WORD,
  V2_HEALTH_WORD,
  V2_MAX_CROSSED,
  V2_METRICS_WORD,
  V2_TUNNEL_WORDS,
} from './v2-layout.ts';

const W_BYTES = V2_METRICS_WORD.BYTES;
const W_PACKETS = V2_METRICS_WORD.PACKETS;
const W_FIRST = V2_METRICS_WORD.FIRST_SEEN_NS;
const W_LAST = V2_METRICS_WORD.LAST_SEEN_NS;
const W_FLAGS_DSCP = V2_METRICS_WORD.FLAGS_DSCP;
const W_TUNNEL = V2_METRICS_WORD.TUNNEL_ID;
const W_CROSSED_IF = V2_METRICS_WORD.CROSSED_IF_INDEX;
const W_CROSSED_DIR = V2_METRICS_WORD.CROSSED_DIRECTION;
const W_CROSSED_COUNT = V2_METRICS_WORD.CROSSED_DIRECTION_COUNT;
const W_DEDUP_MACS = V2_METRICS_WORD.DEDUP_MACS;
const TCP_FLAGS_MASK = 0xffff;
const DSCP_MASK = 0xff0000;
const TUNNEL_TYPE_SHIFT = 24;
/** crossed_direction[i] is byte `i` of the 8 bytes from word W_CROSSED_DIR; the count is byte 6. */
const CROSSED_COUNT_BYTE = 6;

/**
 * Merges the metrics starting at word `s` of `src` into those starting at word `d` of `dst`
 * (each a `struct flow_metrics`: word `V2_KEY_WORDS` of a row, or a per-CPU map value).
 */
export function mergeFlowMetrics(dst: Int32Array, d: number, src: Int32Array, s: number): void {
  addU64(dst, d + W_BYTES, src[s + W_BYTES], src[s + W_BYTES + 1]);
  addU64(dst, d + W_PACKETS, src[s + W_PACKETS], src[s + W_PACKETS + 1]);

  const firstHi = src[s + W_FIRST + 1] >>> 0;
  const storedFirstHi = dst[d + W_FIRST + 1] >>> 0;
  const srcOlder =
    firstHi < storedFirstHi || (firstHi === storedFirstHi && src[s + W_FIRST] >>> 0 < dst[d + W_FIRST] >>> 0);
  if (srcOlder) {
    dst[d + W_FIRST] = src[s + W_FIRST];
    dst[d + W_FIRST + 1] = firstHi;
  }

  const flagsDscp = src[s + W_FLAGS_DSCP];
  const storedFlagsDscp = dst[d + W_FLAGS_DSCP];
  const flags = (storedFlagsDscp | flagsDscp) & TCP_FLAGS_MASK;
  const lastHi = src[s + W_LAST + 1] >>> 0;
  const storedLastHi = dst[d + W_LAST + 1] >>> 0;
  const srcLatest =
    lastHi > storedLastHi || (lastHi === storedLastHi && src[s + W_LAST] >>> 0 >= dst[d + W_LAST] >>> 0);
  if (srcLatest) {
    dst[d + W_LAST] = src[s + W_LAST];
    dst[d + W_LAST + 1] = lastHi;
  }
  const dscp = (srcLatest ? flagsDscp : storedFlagsDscp) & DSCP_MASK;
  const srcTunnel = flagsDscp >>> TUNNEL_TYPE_SHIFT;
  const storedTunnel = storedFlagsDscp >>> TUNNEL_TYPE_SHIFT;
  const tunnelFromSrc = srcTunnel !== 0 && (srcLatest || storedTunnel === 0);
  if (tunnelFromSrc) {
    for (let w = 0; w < V2_TUNNEL_WORDS; w++) dst[d + W_TUNNEL + w] = src[s + W_TUNNEL + w];
  }
  dst[d + W_FLAGS_DSCP] = flags | dscp | ((tunnelFromSrc ? srcTunnel : storedTunnel) << TUNNEL_TYPE_SHIFT);

  if (crossedCount(src, s) !== 0 && !listsOnlyTheOneCrossed(dst, d, src, s)) {
    mergeCrossed(dst, d, src, s, srcOlder);
  }
  const macs = s + W_DEDUP_MACS;
  if ((src[macs] | src[macs + 1] | src[macs + 2]) !== 0) {
    const stored = d + W_DEDUP_MACS;
    if (srcOlder || (dst[stored] | dst[stored + 1] | dst[stored + 2]) === 0) {
      dst[stored] = src[macs];
      dst[stored + 1] = src[macs + 1];
      dst[stored + 2] = src[macs + 2];
    }
  }
}

/** A crossed list of one entry, as `mergeCrossed` writes it: the count word with count 1 and nothing else. */
const ONE_CROSSED_COUNT_WORD = 1 << ((CROSSED_COUNT_BYTE - 4) * 8);

/**
 * Whether the union of the crossed lists would leave `dst` exactly as it is: `src` lists one
 * entry, and `dst` lists that entry alone, with every other crossed word zero as `mergeCrossed`
 * writes them. It is so for every record of a flow seen on one interface (every packet of a
 * capture of one interface), which then skips the union (measured: a tenth of the time `read`
 * spent folding a packet).
 */
function listsOnlyTheOneCrossed(dst: Int32Array, d: number, src: Int32Array, s: number): boolean {
  if (
    dst[d + W_CROSSED_COUNT] !== ONE_CROSSED_COUNT_WORD ||
    crossedCount(src, s) !== 1 ||
    dst[d + W_CROSSED_IF] !== src[s + W_CROSSED_IF] ||
    dst[d + W_CROSSED_DIR] !== (src[s + W_CROSSED_DIR] & 0xff)
  ) {
    return false;
  }
  for (let i = 1; i < V2_MAX_CROSSED; i++) if (dst[d + W_CROSSED_IF + i] !== 0) return false;
  return true;
}

function crossedCount(words: Int32Array, m: number): number {
  return (words[m + W_CROSSED_COUNT] >>> 16) & 0xff;
}

/** Byte `i` of the 8 bytes from word W_CROSSED_DIR of the metrics at `m` (a direction, or the count at 6). */
function crossedByte(words: Int32Array, m: number, i: number): number {
  return (words[m + W_CROSSED_DIR + (i >>> 2)] >>> ((i & 3) * 8)) & 0xff;
}

// Scratch for one union: merges run one at a time, and a list is at most V2_MAX_CROSSED long.
const unionIf = new Int32Array(V2_MAX_CROSSED);
const unionDir = new Uint8Array(V2_MAX_CROSSED);

/** Unions the crossed lists of `src` into `dst`, the older record's entries first. */
function mergeCrossed(dst: Int32Array, d: number, src: Int32Array, s: number, srcOlder: boolean): void {
  const [first, f, second, g] = srcOlder ? [src, s, dst, d] : [dst, d, src, s];
  let n = 0;
  const firstCount = crossedCount(first, f);
  for (let i = 0; i < firstCount; i++, n++) {
    unionIf[n] = first[f + W_CROSSED_IF + i];
    unionDir[n] = crossedByte(first, f, i);
  }
  const secondCount = crossedCount(second, g);
  for (let i = 0; i < secondCount && n < V2_MAX_CROSSED; i++) {
    const ifIndex = second[g + W_CROSSED_IF + i];
    const direction = crossedByte(second, g, i);
    let seen = false;
    for (let j = 0; j < n && !seen; j++) seen = unionIf[j] === ifIndex && unionDir[j] === direction;
    if (!seen) {
      unionIf[n] = ifIndex;
      unionDir[n] = direction;
      n++;
    }
  }
  for (let i = 0; i < V2_MAX_CROSSED; i++) dst[d + W_CROSSED_IF + i] = i < n ? unionIf[i] : 0;
  let low = 0;
  let high = n << ((CROSSED_COUNT_BYTE - 4) * 8);
  for (let i = 0; i < n; i++) {
    if (i < 4) low |= unionDir[i] << (i * 8);
    else high |= unionDir[i] << ((i - 4) * 8);
  }
  dst[d + W_CROSSED_DIR] = low;
  dst[d + W_CROSSED_DIR + 1] = high;
}

/** Adds the u64 (lo, hi) to the u64 at words[at] (low), words[at + 1] (high), with carry. */
function addU64(words: Int32Array, at: number, lo: number, hi: number): void {
  const sumLo = (words[at] >>> 0) + (lo >>> 0);
  words[at] = sumLo;
  words[at + 1] = (words[at + 1] >>> 0) + (hi >>> 0) + (sumLo >= TWO_POW_32 ? 1 : 0);
}

const H = V2_HEALTH_WORD;
/** health_flags is the top byte of the DROP_FLAGS_STATE word. */
const HEALTH_FLAGS_SHIFT = 24;

/**
 * Merges the health section starting at word `s` of `src` into the one at word `d` of `dst` (each
 * a `struct flow_health`: a row's last section, or a health map value). `srcLater` says whether
 * `src` was measured after `dst` (its flow's last-seen is later): its latest RTT sample wins then.
 *
 * - drops and retransmissions (packets and bytes) and RTT sample counts add;
 * - RTT min and max are those of both records' samples; a record without samples adds none;
 * - the handshake time is the first one measured (a flow has one handshake; a later one would be
 *   a new connection on the same ports, which keeps its first);
 * - the latest drop (time, cause, flags, state) is that of the later `drop_latest_ns`.
 */
export function mergeFlowHealth(
  dst: Int32Array,
  d: number,
  src: Int32Array,
  s: number,
  srcLater: boolean,
): void {
  const srcFlags = src[s + H.DROP_FLAGS_STATE] >>> HEALTH_FLAGS_SHIFT;
  const dstFlags = dst[d + H.DROP_FLAGS_STATE] >>> HEALTH_FLAGS_SHIFT;
  addU64(dst, d + H.DROP_BYTES, src[s + H.DROP_BYTES], src[s + H.DROP_BYTES + 1]);
  addU64(dst, d + H.RETRANS_BYTES, src[s + H.RETRANS_BYTES], src[s + H.RETRANS_BYTES + 1]);
  addU64(dst, d + H.RETRANS_PACKETS, src[s + H.RETRANS_PACKETS], src[s + H.RETRANS_PACKETS + 1]);
  const srcDrops = (src[s + H.DROP_PACKETS] | src[s + H.DROP_PACKETS + 1]) !== 0;
  const dstDrops = (dst[d + H.DROP_PACKETS] | dst[d + H.DROP_PACKETS + 1]) !== 0;
  addU64(dst, d + H.DROP_PACKETS, src[s + H.DROP_PACKETS], src[s + H.DROP_PACKETS + 1]);
  let flagsState = dst[d + H.DROP_FLAGS_STATE] & 0xffffff;
  if (srcDrops && (!dstDrops || !u64Less(src, s + H.DROP_LATEST_NS, dst, d + H.DROP_LATEST_NS))) {
    dst[d + H.DROP_LATEST_NS] = src[s + H.DROP_LATEST_NS];
    dst[d + H.DROP_LATEST_NS + 1] = src[s + H.DROP_LATEST_NS + 1];
    dst[d + H.DROP_LATEST_CAUSE] = src[s + H.DROP_LATEST_CAUSE];
    flagsState = src[s + H.DROP_FLAGS_STATE] & 0xffffff;
  }
  if ((srcFlags & HealthFlag.RTT) !== 0) {
    if ((dstFlags & HealthFlag.RTT) === 0) {
      for (const w of [H.RTT_MIN_NS, H.RTT_MAX_NS, H.RTT_LAST_NS]) {
        dst[d + w] = src[s + w];
        dst[d + w + 1] = src[s + w + 1];
      }
      dst[d + H.RTT_SAMPLES] = src[s + H.RTT_SAMPLES];
    } else {
      if (u64Less(src, s + H.RTT_MIN_NS, dst, d + H.RTT_MIN_NS))
        copyU64(dst, d + H.RTT_MIN_NS, src, s + H.RTT_MIN_NS);
      if (u64Less(dst, d + H.RTT_MAX_NS, src, s + H.RTT_MAX_NS))
        copyU64(dst, d + H.RTT_MAX_NS, src, s + H.RTT_MAX_NS);
      if (srcLater) copyU64(dst, d + H.RTT_LAST_NS, src, s + H.RTT_LAST_NS);
      dst[d + H.RTT_SAMPLES] = (dst[d + H.RTT_SAMPLES] >>> 0) + (src[s + H.RTT_SAMPLES] >>> 0);
    }
  }
  if ((srcFlags & HealthFlag.HANDSHAKE) !== 0 && (dstFlags & HealthFlag.HANDSHAKE) === 0) {
    copyU64(dst, d + H.HANDSHAKE_RTT_NS, src, s + H.HANDSHAKE_RTT_NS);
  }
  dst[d + H.DROP_FLAGS_STATE] = flagsState | ((srcFlags | dstFlags) << HEALTH_FLAGS_SHIFT);
}

/** True when the u64 at a[i] is less than the u64 at b[j]. */
function u64Less(a: Int32Array, i: number, b: Int32Array, j: number): boolean {
  const ah = a[i + 1] >>> 0;
  const bh = b[j + 1] >>> 0;
  return ah < bh || (ah === bh && a[i] >>> 0 < b[j] >>> 0);
}

function copyU64(dst: Int32Array, d: number, src: Int32Array, s: number): void {
  dst[d] = src[s];
  dst[d + 1] = src[s + 1];
}

const D = V2_DNS_WORD;
/** dns_record_flags is byte 2 of the NAME_LEN_ERRNO_FLAGS word, dns_errno byte 1. */
const DNS_FLAGS_SHIFT = 16;
const DNS_ERRNO_SHIFT = 8;
/** What a message brings to a section besides counts: the header, the name and their flags. */
const DNS_MESSAGE_FLAGS = DnsFlag.HEADER | DnsFlag.NAME | DnsFlag.NAME_TRUNCATED;
const NAME_WORDS = V2_DNS_NAME_MAX / 4;
const MAX_U32 = 0xffff_ffff;

/**
 * Merges the DNS section starting at word `s` of `src` into the one at word `d` of `dst` (each a
 * `struct flow_dns`: a row's last section, or a DNS map value). One section is the later: the one
 * whose `dns_latest_ns` is greater; at equal times, `src` (the later arrival), as for the DSCP.
 *
 * - the counts (queries, answers, unanswered, malformed) add, saturating at 2^32 - 1;
 * - the latest message's header and name come from the later section that has them (a section
 *   without a header, such as one of malformed messages only, never clears one);
 * - the latency is that of the later section that measured one;
 * - the errno is the later section's when it has one, else the other's;
 * - `dns_latest_ns` is the later time.
 */
export function mergeFlowDns(dst: Int32Array, d: number, src: Int32Array, s: number): void {
  const srcLater = !u64Less(src, s + D.LATEST_NS, dst, d + D.LATEST_NS);
  const srcWord = src[s + D.NAME_LEN_ERRNO_FLAGS];
  const dstWord = dst[d + D.NAME_LEN_ERRNO_FLAGS];
  const srcFlags = (srcWord >>> DNS_FLAGS_SHIFT) & 0xff;
  const dstFlags = (dstWord >>> DNS_FLAGS_SHIFT) & 0xff;
  addCount(dst, d + D.QUERIES, src[s + D.QUERIES]);
  addCount(dst, d + D.ANSWERS, src[s + D.ANSWERS]);
  addCount(dst, d + D.UNANSWERED, src[s + D.UNANSWERED]);
  addCount(dst, d + D.MALFORMED, src[s + D.MALFORMED]);
  let nameLength = dstWord & 0xff;
  let flags = dstFlags;
  if ((srcFlags & DnsFlag.HEADER) !== 0 && ((dstFlags & DnsFlag.HEADER) === 0 || srcLater)) {
    dst[d + D.ID_FLAGS] = src[s + D.ID_FLAGS];
    for (let w = 0; w < NAME_WORDS; w++) dst[d + D.NAME + w] = src[s + D.NAME + w];
    nameLength = srcWord & 0xff;
    flags = (flags & ~DNS_MESSAGE_FLAGS) | (srcFlags & DNS_MESSAGE_FLAGS);
  }
  if ((srcFlags & DnsFlag.LATENCY) !== 0 && ((dstFlags & DnsFlag.LATENCY) === 0 || srcLater)) {
    copyU64(dst, d + D.LATENCY_NS, src, s + D.LATENCY_NS);
    flags |= DnsFlag.LATENCY;
  }
  const srcErrno = (srcWord >>> DNS_ERRNO_SHIFT) & 0xff;
  const dstErrno = (dstWord >>> DNS_ERRNO_SHIFT) & 0xff;
  const errno = srcErrno !== 0 && (dstErrno === 0 || srcLater) ? srcErrno : dstErrno;
  if (srcLater) copyU64(dst, d + D.LATEST_NS, src, s + D.LATEST_NS);
  dst[d + D.NAME_LEN_ERRNO_FLAGS] = nameLength | (errno << DNS_ERRNO_SHIFT) | (flags << DNS_FLAGS_SHIFT);
}

/** Adds the u32 count `n` to the one at words[at], saturating at 2^32 - 1. */
function addCount(words: Int32Array, at: number, n: number): void {
  words[at] = Math.min((words[at] >>> 0) + (n >>> 0), MAX_U32);
}
