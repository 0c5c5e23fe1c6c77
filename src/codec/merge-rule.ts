/**
 * How two records of one flow become one record: the single rule every stage that merges applies
 * (the map drain folding per-CPU values, the accounter's flow table folding batches).
 *
 * - bytes and packets add, as u64 with carry;
 * - first-seen is the earlier time, last-seen the later;
 * - TCP flags are ORed;
 * - DSCP is that of the flow's latest packet: the record with the greater last-seen time; when
 *   both were last seen at the same nanosecond, the record merged in (the later arrival) wins.
 *
 * So the result depends on arrival order only between records stamped at the same nanosecond.
 */
import { TWO_POW_32 } from '../model/u64.ts';
import { V2_METRICS_WORD } from './v2-layout.ts';

const W_BYTES = V2_METRICS_WORD.BYTES;
const W_PACKETS = V2_METRICS_WORD.PACKETS;
const W_FIRST = V2_METRICS_WORD.FIRST_SEEN_NS;
const W_LAST = V2_METRICS_WORD.LAST_SEEN_NS;
const W_FLAGS_DSCP = V2_METRICS_WORD.FLAGS_DSCP;
const TCP_FLAGS_MASK = 0xffff;
const DSCP_MASK = 0xff0000;

/**
 * Merges the metrics starting at word `s` of `src` into those starting at word `d` of `dst`
 * (each a `struct flow_metrics`: word `V2_KEY_WORDS` of a row, or a per-CPU map value).
 */
export function mergeFlowMetrics(dst: Int32Array, d: number, src: Int32Array, s: number): void {
  addU64(dst, d + W_BYTES, src[s + W_BYTES], src[s + W_BYTES + 1]);
  addU64(dst, d + W_PACKETS, src[s + W_PACKETS], src[s + W_PACKETS + 1]);

  const firstHi = src[s + W_FIRST + 1] >>> 0;
  const storedFirstHi = dst[d + W_FIRST + 1] >>> 0;
  if (
    firstHi < storedFirstHi ||
    (firstHi === storedFirstHi && src[s + W_FIRST] >>> 0 < dst[d + W_FIRST] >>> 0)
  ) {
    dst[d + W_FIRST] = src[s + W_FIRST];
    dst[d + W_FIRST + 1] = firstHi;
  }

  const flagsDscp = src[s + W_FLAGS_DSCP];
  const storedFlagsDscp = dst[d + W_FLAGS_DSCP];
  const flags = (storedFlagsDscp | flagsDscp) & TCP_FLAGS_MASK;
  const lastHi = src[s + W_LAST + 1] >>> 0;
  const storedLastHi = dst[d + W_LAST + 1] >>> 0;
  if (lastHi > storedLastHi || (lastHi === storedLastHi && src[s + W_LAST] >>> 0 >= dst[d + W_LAST] >>> 0)) {
    dst[d + W_LAST] = src[s + W_LAST];
    dst[d + W_LAST + 1] = lastHi;
    dst[d + W_FLAGS_DSCP] = flags | (flagsDscp & DSCP_MASK);
  } else {
    dst[d + W_FLAGS_DSCP] = flags | (storedFlagsDscp & DSCP_MASK);
  }
}

/** Adds the u64 (lo, hi) to the u64 at words[at] (low), words[at + 1] (high), with carry. */
function addU64(words: Int32Array, at: number, lo: number, hi: number): void {
  const sumLo = (words[at] >>> 0) + (lo >>> 0);
  words[at] = sumLo;
  words[at + 1] = (words[at + 1] >>> 0) + (hi >>> 0) + (sumLo >= TWO_POW_32 ? 1 : 0);
}
