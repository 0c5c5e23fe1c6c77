/**
 * Byte offsets of flowtap's v2 record, mirroring `struct flow_record` in bpf/flow_record.h.
 * This module and that header are the only places that know them; a test compiles the header
 * and compares every offset and size with these constants.
 */

/** Offsets (bytes from the start of a record) and sizes of every v2 field. */
export const V2 = {
  ETH_PROTOCOL: 0,
  DIRECTION: 2,
  TRANSPORT_PROTOCOL: 3,
  SRC_MAC: 4,
  DST_MAC: 10,
  SRC_ADDR: 16,
  DST_ADDR: 32,
  SRC_PORT: 48,
  DST_PORT: 50,
  IF_INDEX: 52,
  ICMP_TYPE: 56,
  ICMP_CODE: 57,
  KEY_PAD: 58,
  BYTES: 64,
  PACKETS: 72,
  FIRST_SEEN_NS: 80,
  LAST_SEEN_NS: 88,
  TCP_FLAGS: 96,
  DSCP: 98,
  METRICS_PAD: 99,
} as const;

/** Size of `struct flow_key`: the part of a record that identifies the flow. */
export const V2_KEY_BYTES = 64;
/** Size of `struct flow_metrics`. */
export const V2_METRICS_BYTES = 40;
/** Size of `struct flow_record`. */
export const V2_RECORD_BYTES = V2_KEY_BYTES + V2_METRICS_BYTES;
/** Key size in 32-bit words, for hashing and comparing keys word by word. */
export const V2_KEY_WORDS = V2_KEY_BYTES / 4;
/** Size of `struct flow_record` in 32-bit words: hot paths read and write rows word by word. */
export const V2_ROW_WORDS = V2_RECORD_BYTES / 4;
/** Size of `struct flow_metrics` in 32-bit words (a per-CPU map value is one of these). */
export const V2_METRICS_WORDS = V2_METRICS_BYTES / 4;

/**
 * Word indexes of the metrics inside `struct flow_metrics` (add `V2_KEY_WORDS` for a whole row).
 * A u64 spans two words, low first.
 */
export const V2_METRICS_WORD = {
  BYTES: (V2.BYTES - V2_KEY_BYTES) / 4,
  PACKETS: (V2.PACKETS - V2_KEY_BYTES) / 4,
  FIRST_SEEN_NS: (V2.FIRST_SEEN_NS - V2_KEY_BYTES) / 4,
  LAST_SEEN_NS: (V2.LAST_SEEN_NS - V2_KEY_BYTES) / 4,
  /** tcp_flags (u16, bits 0..15), dscp (u8, bits 16..23) and a pad byte share one word. */
  FLAGS_DSCP: (V2.TCP_FLAGS - V2_KEY_BYTES) / 4,
} as const;
