/**
 * What differs between the two engines that answer `flowtap query`: the embedded DuckDB store and
 * ClickHouse. The questions (questions.ts) are written once over these pieces; each dialect turns
 * them into SQL its engine runs. The ClickHouse one uses only functions ClickHouse 18.16 (Debian's)
 * already had and current releases still have: no DateTime64 (times are UInt64 Unix nanoseconds),
 * no positional GROUP BY/ORDER BY, no `>>` operator, no leftPad.
 */
import { Direction, EtherType, transportProtocolName } from '../model/names.ts';

/** Engine-specific SQL pieces of the questions. */
export interface SqlDialect {
  /** The relation holding one row per stored flow. */
  readonly flows: string;
  /** A literal of the unsigned 64-bit `value`. */
  u64(value: bigint): string;
  /** A condition: time column `column` is at or after Unix ms `ms`. */
  timeAtOrAfter(column: string, ms: number): string;
  /** A condition: time column `column` is before Unix ms `ms`. */
  timeBefore(column: string, ms: number): string;
  /** A time column as the engine's output shows it (RFC 3339 UTC text once written). */
  timeText(column: string): string;
  /** The bucket of `column` in steps of `stepMs`: what a timeline groups and orders by. */
  timeBucket(column: string, stepMs: number): string;
  /** A bucket (from timeBucket) as output. */
  bucketText(bucket: string): string;
  /** Text of a stored address as `formatIp` prints it, from its halves and the flow's EtherType. */
  ipText(hi: string, lo: string, etype: string): string;
  /** Name of an IANA protocol number (TCP, UDP, …; the number itself without a name). */
  protoName(proto: string): string;
  /** INGRESS, EGRESS or UNKNOWN. */
  directionName(direction: string): string;
}

const NS_PER_MS = 1_000_000;

/** A SQL TIMESTAMP_NS literal of Unix milliseconds `ms` (DuckDB). */
export function timestampLiteral(ms: number): string {
  return `TIMESTAMP_NS '${new Date(ms).toISOString().replace('T', ' ').replace('Z', '')}'`;
}

/** DuckDB: the store's `flows` view and the macros of schema.ts. */
export const DUCKDB_DIALECT: SqlDialect = {
  flows: 'flows',
  u64: (value) => `${value}::UBIGINT`,
  timeAtOrAfter: (column, ms) => `${column} >= ${timestampLiteral(ms)}`,
  timeBefore: (column, ms) => `${column} < ${timestampLiteral(ms)}`,
  timeText: (column) => column,
  timeBucket: (column, stepMs) => `time_bucket(to_milliseconds(${Math.trunc(stepMs)}), ${column}::TIMESTAMP)`,
  bucketText: (bucket) => bucket,
  ipText: (hi, lo, etype) => `flowtap_ip_text(${hi}, ${lo}, ${etype})`,
  protoName: (proto) => `flowtap_proto_name(${proto})`,
  directionName: (direction) => `flowtap_direction_name(${direction})`,
};

/** Protocol numbers that have a name, and the names, as ClickHouse array literals. */
const NAMED_PROTOCOLS = Array.from({ length: 256 }, (_, p) => [p, transportProtocolName(p)] as const).filter(
  ([p, name]) => name !== String(p),
);
const PROTOCOL_NUMBERS = `[${NAMED_PROTOCOLS.map(([p]) => p).join(', ')}]`;
const PROTOCOL_NAMES = `[${NAMED_PROTOCOLS.map(([, name]) => `'${name}'`).join(', ')}]`;

/** 16 upper-case hex digits of the UInt64 `x` (hex() drops leading zero bytes; 18.16 has no leftPad). */
function hex16(x: string): string {
  return `substring(concat('0000000000000000', hex(${x})), length(hex(${x})) + 1, 16)`;
}

/** Lower-case hex of the UInt16 `x` without leading zeros, as one RFC 5952 group. */
function group(x: string): string {
  return `replaceRegexpOne(lower(hex(toUInt16(${x}))), '^0+([0-9a-f])', '\\\\1')`;
}

/** Text of Unix nanoseconds `ns` as DuckDB prints a TIMESTAMP_NS: fraction without trailing zeros. */
function nsText(ns: string): string {
  return `concat(replaceOne(toString(toDateTime(intDiv(${ns}, 1000000000), 'UTC')), ' ', 'T'),
    if(${ns} % 1000000000 = 0, '', concat('.', replaceRegexpOne(substring(toString(1000000000 + ${ns} % 1000000000), 2), '0+$', ''))),
    'Z')`;
}

/**
 * ClickHouse: the flows table of clickhouse-schema.ts, times in UInt64 Unix nanoseconds. An IPv6
 * flow's `::a.b.c.d` (the deprecated IPv4-compatible form) is spelled out, because
 * IPv6NumToString shows it dotted where formatIp shows hex groups.
 */
export function clickhouseDialect(table: string): SqlDialect {
  return {
    flows: table,
    u64: (value) => `toUInt64('${value}')`,
    timeAtOrAfter: (column, ms) => `${column} >= ${BigInt(Math.trunc(ms)) * BigInt(NS_PER_MS)}`,
    timeBefore: (column, ms) => `${column} < ${BigInt(Math.trunc(ms)) * BigInt(NS_PER_MS)}`,
    timeText: nsText,
    timeBucket: (column, stepMs) => {
      const stepNs = BigInt(Math.trunc(stepMs)) * BigInt(NS_PER_MS);
      return `intDiv(${column}, ${stepNs}) * ${stepNs}`;
    },
    bucketText: nsText,
    ipText: (hi, lo, etype) =>
      `multiIf(${hi} = 0 AND ${etype} != ${EtherType.IPV6} AND bitShiftRight(${lo}, 32) IN (0, 65535),
          IPv4NumToString(toUInt32(bitAnd(${lo}, 4294967295))),
        ${hi} = 0 AND bitShiftRight(${lo}, 32) = 0 AND bitShiftRight(${lo}, 16) = 0,
          if(${lo} = 0, '::', concat('::', ${group(lo)})),
        ${hi} = 0 AND bitShiftRight(${lo}, 32) = 0,
          concat('::', ${group(`bitShiftRight(${lo}, 16)`)}, ':', ${group(`bitAnd(${lo}, 65535)`)}),
        IPv6NumToString(toFixedString(unhex(concat(${hex16(hi)}, ${hex16(lo)})), 16)))`,
    protoName: (proto) => `transform(${proto}, ${PROTOCOL_NUMBERS}, ${PROTOCOL_NAMES}, toString(${proto}))`,
    directionName: (direction) =>
      `transform(${direction}, [${Direction.INGRESS}, ${Direction.EGRESS}], ['INGRESS', 'EGRESS'], 'UNKNOWN')`,
  };
}
