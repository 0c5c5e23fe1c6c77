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
  VLAN_OUTER: 58,
  VLAN_INNER: 60,
  KEY_PAD: 62,
  BYTES: 64,
  PACKETS: 72,
  FIRST_SEEN_NS: 80,
  LAST_SEEN_NS: 88,
  TCP_FLAGS: 96,
  DSCP: 98,
  TUNNEL_TYPE: 99,
  TUNNEL_ID: 100,
  TUNNEL_SRC: 104,
  TUNNEL_DST: 120,
  CROSSED_IF_INDEX: 136,
  CROSSED_DIRECTION: 160,
  CROSSED_COUNT: 166,
  METRICS_PAD0: 167,
  DEDUP_SRC_MAC: 168,
  DEDUP_DST_MAC: 174,
  METRICS_PAD: 180,
  AGENT_IP: 184,
  REV_BYTES: 200,
  REV_PACKETS: 208,
  REV_FIRST_SEEN_NS: 216,
  REV_LAST_SEEN_NS: 224,
  REV_TCP_FLAGS: 232,
  REV_DSCP: 234,
  RECORD_FLAGS: 235,
  USER_PAD: 236,
  RTT_MIN_NS: 240,
  RTT_MAX_NS: 248,
  RTT_LAST_NS: 256,
  HANDSHAKE_RTT_NS: 264,
  DROP_BYTES: 272,
  DROP_PACKETS: 280,
  RETRANS_BYTES: 288,
  RETRANS_PACKETS: 296,
  DROP_LATEST_NS: 304,
  DROP_LATEST_CAUSE: 312,
  DROP_LATEST_FLAGS: 316,
  DROP_LATEST_STATE: 318,
  HEALTH_FLAGS: 319,
  RTT_SAMPLES: 320,
  HEALTH_PAD: 324,
  DNS_LATENCY_NS: 328,
  DNS_LATEST_NS: 336,
  DNS_QUERIES: 344,
  DNS_ANSWERS: 348,
  DNS_UNANSWERED: 352,
  DNS_MALFORMED: 356,
  DNS_ID: 360,
  DNS_FLAGS: 362,
  DNS_NAME_LEN: 364,
  DNS_ERRNO: 365,
  DNS_RECORD_FLAGS: 366,
  DNS_PAD: 367,
  DNS_NAME: 368,
} as const;

/** Interfaces a record lists as crossed (`FLOWTAP_MAX_CROSSED`). */
export const V2_MAX_CROSSED = 6;

/** `tunnel_type` values (`FLOWTAP_TUNNEL_*`): the encapsulation the key's inner packet arrived in. */
export const TunnelType = {
  NONE: 0,
  VXLAN: 1,
  GENEVE: 2,
  /** GRE and GRETAP. */
  GRE: 3,
  /** IPv4 or IPv6 inside IPv4 or IPv6; the family is that of the tunnel addresses. */
  IPIP: 4,
} as const;

/** `record_flags` bits (`FLOWTAP_RECORD_*`). */
export const RecordFlag = {
  /** A bidirectional record: the `rev_*` fields are meaningful. */
  BIFLOW: 1,
} as const;

/** `health_flags` bits (`FLOWTAP_HEALTH_*`): which parts of the health section were measured. */
export const HealthFlag = {
  /** `rtt_*` hold smoothed-RTT samples of the flow's socket. */
  RTT: 1,
  /** `handshake_rtt_ns` holds a SYN → SYN-ACK or SYN-ACK → ACK time. */
  HANDSHAKE: 2,
} as const;

/** `dns_record_flags` bits (`FLOWTAP_DNS_*`): which parts of the DNS section hold a value. */
export const DnsFlag = {
  /** `dns_id`, `dns_flags` hold the header of the section's latest message. */
  HEADER: 1,
  /** `dns_name` holds that message's first question name (`dns_name_len` bytes; 0 is the root). */
  NAME: 2,
  /** The name was longer than {@link V2_DNS_NAME_MAX}: its first bytes are kept. */
  NAME_TRUNCATED: 4,
  /** `dns_latency_ns` holds the latency of an answered query. */
  LATENCY: 8,
} as const;

/** Bytes of a question name a DNS section keeps (`FLOWTAP_DNS_NAME_MAX`). */
export const V2_DNS_NAME_MAX = 64;

/** Bounds the DNS parsers and trackers share with the kernel (`FLOWTAP_DNS_*` in the header). */
export const DnsLimit = {
  /** Queries awaiting their response at most; the oldest beyond is counted unanswered. */
  PENDING_MAX: 4096,
} as const;

/** `dns_errno` values (`FLOWTAP_DNS_E*`): netobserv's dns_errno, the errno its kernel program met. */
export const DnsErrno = {
  /** A response that matched no pending query. */
  ENOENT: 2,
  /** The DNS header ends past the packet. */
  EFAULT: 14,
  /** A malformed message: impossible counts, a bad label, pointer or name. */
  EINVAL: 22,
} as const;

/** Offsets in `struct flow_dns_query_key`, the key of a query awaiting its response. */
export const DNS_QUERY_KEY = {
  SRC_ADDR: 0,
  DST_ADDR: 16,
  SRC_PORT: 32,
  DST_PORT: 34,
  DNS_ID: 36,
  TRANSPORT_PROTOCOL: 38,
  KEY_PAD: 39,
} as const;
/** Size of `struct flow_dns_query_key`. */
export const DNS_QUERY_KEY_BYTES = 40;

/** Size of `struct flow_key`: the part of a record that identifies the flow. */
export const V2_KEY_BYTES = 64;
/** Size of `struct flow_metrics`: the kernel map's value. */
export const V2_METRICS_BYTES = 120;
/** Size of `struct flow_event` (key + metrics): what the kernel hands out (ring buffer, map drain). */
export const V2_EVENT_BYTES = V2_KEY_BYTES + V2_METRICS_BYTES;
/** Size of `struct flow_user`: the section only user space writes. */
export const V2_USER_BYTES = 56;
/** Size of `struct flow_health`: TCP health, the health programs' map value and the row's last section. */
export const V2_HEALTH_BYTES = 88;
/** Size of `struct flow_dns`: DNS of the flow, the DNS map's value and the row's last section. */
export const V2_DNS_BYTES = 104;
/** Size of `struct flow_dns_pending`: query time, the query's flow key and its DNS section. */
export const DNS_PENDING_BYTES = 8 + V2_KEY_BYTES + V2_DNS_BYTES;
/** Size of `struct flow_record`: a batch row. */
export const V2_RECORD_BYTES = V2_EVENT_BYTES + V2_USER_BYTES + V2_HEALTH_BYTES + V2_DNS_BYTES;
/** Size of `struct flow_health` in 32-bit words. */
export const V2_HEALTH_WORDS = V2_HEALTH_BYTES / 4;

/**
 * Word indexes inside `struct flow_health` (add `V2.RTT_MIN_NS / 4` for a whole row).
 * A u64 spans two words, low first.
 */
export const V2_HEALTH_WORD = {
  RTT_MIN_NS: 0,
  RTT_MAX_NS: 2,
  RTT_LAST_NS: 4,
  HANDSHAKE_RTT_NS: 6,
  DROP_BYTES: 8,
  DROP_PACKETS: 10,
  RETRANS_BYTES: 12,
  RETRANS_PACKETS: 14,
  DROP_LATEST_NS: 16,
  DROP_LATEST_CAUSE: 18,
  /** drop_latest_flags (bits 0..15), drop_latest_state (16..23), health_flags (24..31). */
  DROP_FLAGS_STATE: 19,
  RTT_SAMPLES: 20,
  PAD: 21,
} as const;
/** Size of `struct flow_dns` in 32-bit words. */
export const V2_DNS_WORDS = V2_DNS_BYTES / 4;

/**
 * Word indexes inside `struct flow_dns` (add `V2.DNS_LATENCY_NS / 4` for a whole row).
 * A u64 spans two words, low first.
 */
export const V2_DNS_WORD = {
  LATENCY_NS: 0,
  LATEST_NS: 2,
  QUERIES: 4,
  ANSWERS: 5,
  UNANSWERED: 6,
  MALFORMED: 7,
  /** dns_id (bits 0..15), dns_flags (16..31). */
  ID_FLAGS: 8,
  /** dns_name_len (bits 0..7), dns_errno (8..15), dns_record_flags (16..23), dns_pad (24..31). */
  NAME_LEN_ERRNO_FLAGS: 9,
  /** dns_name: 16 words. */
  NAME: 10,
} as const;
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
  /** tcp_flags (u16, bits 0..15), dscp (u8, bits 16..23) and tunnel_type (bits 24..31) share one word. */
  FLAGS_DSCP: (V2.TCP_FLAGS - V2_KEY_BYTES) / 4,
  /** tunnel_id, then tunnel_src and tunnel_dst: 9 words. */
  TUNNEL_ID: (V2.TUNNEL_ID - V2_KEY_BYTES) / 4,
  CROSSED_IF_INDEX: (V2.CROSSED_IF_INDEX - V2_KEY_BYTES) / 4,
  /** crossed_direction[0..3]. */
  CROSSED_DIRECTION: (V2.CROSSED_DIRECTION - V2_KEY_BYTES) / 4,
  /** crossed_direction[4..5] (bits 0..15), crossed_count (bits 16..23), a pad byte. */
  CROSSED_DIRECTION_COUNT: (V2.CROSSED_DIRECTION - V2_KEY_BYTES) / 4 + 1,
  /** dedup_src_mac, dedup_dst_mac: 3 words. */
  DEDUP_MACS: (V2.DEDUP_SRC_MAC - V2_KEY_BYTES) / 4,
} as const;

/** Words of the tunnel fields after the FLAGS_DSCP word (tunnel_id, tunnel_src, tunnel_dst). */
export const V2_TUNNEL_WORDS = (V2.CROSSED_IF_INDEX - V2.TUNNEL_ID) / 4;
