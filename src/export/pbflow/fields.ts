/**
 * Field numbers and wire types of the pbflow messages (proto/flow.proto), the one place the
 * hand-written encoder (encode.ts) and decoder (decode.ts) take them from: a field added to the
 * .proto is added here, then written by one and read by the other.
 */

/** Protobuf wire types used by pbflow. */
export const WIRE = {
  VARINT: 0,
  FIXED64: 1,
  LENGTH_DELIMITED: 2,
  FIXED32: 5,
} as const;

/** `Records` fields. */
export const RECORDS_FIELD = { ENTRIES: 1 } as const;

/** `Record` fields. */
export const RECORD_FIELD = {
  ETH_PROTOCOL: 1,
  DIRECTION: 2,
  TIME_FLOW_START: 3,
  TIME_FLOW_END: 4,
  DATA_LINK: 5,
  NETWORK: 6,
  TRANSPORT: 7,
  BYTES: 8,
  PACKETS: 9,
  INTERFACE: 10,
  /** The newest netobserv's (message IP). */
  AGENT_IP: 12,
  /** The newest netobserv's (repeated DupMapEntry). */
  DUP_LIST: 26,
  /** flowtap's extensions, from 1001 up (proto/flow.proto). */
  VLAN_ID: 1001,
  INNER_VLAN_ID: 1002,
  TUNNEL: 1003,
  /** TCP health (issue 14): the newest netobserv's numbers, then flowtap's from 1004. */
  PKT_DROP_BYTES: 16,
  PKT_DROP_PACKETS: 17,
  PKT_DROP_LATEST_FLAGS: 18,
  PKT_DROP_LATEST_STATE: 19,
  PKT_DROP_LATEST_DROP_CAUSE: 20,
  /** google.protobuf.Duration: the latest smoothed RTT. */
  TIME_FLOW_RTT: 24,
  TIME_FLOW_RTT_MIN: 1004,
  TIME_FLOW_RTT_MAX: 1005,
  TIME_FLOW_RTT_SAMPLES: 1006,
  TIME_HANDSHAKE_RTT: 1007,
  PKT_RETRANS_BYTES: 1008,
  PKT_RETRANS_PACKETS: 1009,
  /** google.protobuf.Timestamp. */
  PKT_DROP_LATEST_TIME: 1010,
  /**
   * DNS tracking (issue 15): the newest netobserv's numbers (uint32 id and flags, Duration
   * latency, uint32 errno, string name), then flowtap's counts (uint32) and cut flag (bool).
   */
  DNS_ID: 21,
  DNS_FLAGS: 22,
  DNS_LATENCY: 23,
  DNS_ERRNO: 25,
  DNS_NAME: 32,
  DNS_QUERIES: 1020,
  DNS_ANSWERS: 1021,
  DNS_UNANSWERED: 1022,
  DNS_MALFORMED: 1023,
  DNS_NAME_TRUNCATED: 1024,
} as const;

/** `DupMapEntry` fields. */
export const DUP_MAP_ENTRY_FIELD = { INTERFACE: 1, DIRECTION: 2 } as const;
/** `Tunnel` fields (flowtap's extension). */
export const TUNNEL_FIELD = { TYPE: 1, ID: 2, SRC_ADDR: 3, DST_ADDR: 4 } as const;

/** `google.protobuf.Timestamp` fields; `google.protobuf.Duration` has the same two. */
export const TIMESTAMP_FIELD = { SECONDS: 1, NANOS: 2 } as const;
/** `DataLink` fields. */
export const DATA_LINK_FIELD = { SRC_MAC: 1, DST_MAC: 2 } as const;
/** `Network` fields. */
export const NETWORK_FIELD = { SRC_ADDR: 1, DST_ADDR: 2 } as const;
/** `IP` fields (members of the `ip_family` oneof). */
export const IP_FIELD = { IPV4: 1, IPV6: 2 } as const;
/** `Transport` fields. */
export const TRANSPORT_FIELD = { SRC_PORT: 1, DST_PORT: 2, PROTOCOL: 3 } as const;

/** The wire tag (key byte(s) before a value) of `field` with `wireType`. */
export function wireTag(field: number, wireType: number): number {
  return (field << 3) | wireType;
}
