/**
 * The named questions of `flowtap query`, each as one SQL statement over the stored flows, written
 * once for DuckDB and ClickHouse (sql-dialect.ts says how they differ).
 * Grouping is done on the stored integer halves of addresses and only the rows returned (after
 * the LIMIT) are turned into text, so the questions stay fast on millions of flows.
 */
import { IP_BYTES } from '../model/ip.ts';
import { DUCKDB_DIALECT, type SqlDialect } from './sql-dialect.ts';

/** The named questions. */
export const QUESTIONS = [
  'top talkers',
  'top ports',
  'top conversations',
  'flows',
  'timeline',
  'tcp health',
] as const;
/** One named question. */
export type Question = (typeof QUESTIONS)[number];
/** What `timeline` can split its series by. */
export const TIMELINE_KEYS = ['total', 'protocol', 'direction', 'interface', 'port'] as const;
/** One `timeline --by` key. */
export type TimelineKey = (typeof TIMELINE_KEYS)[number];

/** The flags of a question. */
export interface QuestionOptions {
  /** Flows whose last packet is at or after this (Unix ms). */
  sinceMs?: number;
  /** Flows whose last packet is before this (Unix ms). */
  untilMs?: number;
  /** Rows returned at most (top lists and `flows`). */
  limit: number;
  /** Only flows from or to this address (16 bytes, IPv4 mapped). */
  host?: Uint8Array;
  /** Only flows from or to this port. */
  port?: number;
  /** `timeline` series. */
  by: TimelineKey;
  /** `timeline` step. */
  stepMs: number;
}

/** The output forms of `flowtap query`. */
export const RESULT_FORMATS = ['table', 'json', 'csv'] as const;
/** One output form. */
export type ResultFormat = (typeof RESULT_FORMATS)[number];

/** @see sql-dialect.ts; re-exported for the modules that built DuckDB SQL before the dialects. */
export { timestampLiteral } from './sql-dialect.ts';

/** SQL matching rows whose `side` (`src` or `dst`) address is `address` (16 bytes). */
function addressIs(d: SqlDialect, side: 'src' | 'dst', address: Uint8Array): string {
  if (address.length !== IP_BYTES) throw new RangeError(`an address has ${IP_BYTES} bytes`);
  const b = Buffer.from(address);
  return `(${side}_ip_hi = ${d.u64(b.readBigUInt64BE(0))} AND ${side}_ip_lo = ${d.u64(b.readBigUInt64BE(8))})`;
}

/** The WHERE clause of `options`' filters, and of `extra` terms. */
function where(d: SqlDialect, o: QuestionOptions, ...extra: string[]): string {
  const terms: string[] = [...extra];
  if (o.sinceMs !== undefined) terms.push(d.timeAtOrAfter('time_end', o.sinceMs));
  if (o.untilMs !== undefined) terms.push(d.timeBefore('time_end', o.untilMs));
  if (o.host) terms.push(`(${addressIs(d, 'src', o.host)} OR ${addressIs(d, 'dst', o.host)})`);
  if (o.port !== undefined) terms.push(`(src_port = ${o.port} OR dst_port = ${o.port})`);
  return terms.length === 0 ? '' : `WHERE ${terms.join(' AND ')}`;
}

const TOTALS = 'sum(bytes) AS bytes, sum(packets) AS packets, count(*) AS flows';
/** Flows with anything measured of their TCP health (schema 4: 0 is "not measured"). */
const HAS_HEALTH = '(drop_packets > 0 OR retrans_packets > 0 OR rtt_last_ns > 0 OR handshake_rtt_ns > 0)';
/** The order of `tcp health` rows: the worst first (drops, then retransmissions, then the slowest). */
const HEALTH_ORDER = 'dropped_packets DESC, retransmitted DESC, max_rtt_ns DESC';
/** True when the source address sorts at or before the destination address. */
const SRC_FIRST = '(src_ip_hi < dst_ip_hi OR (src_ip_hi = dst_ip_hi AND src_ip_lo <= dst_ip_lo))';

/** The series of a timeline split by `key`. */
function timelineSeries(d: SqlDialect, key: TimelineKey): string {
  switch (key) {
    case 'total':
      return "'total'";
    case 'protocol':
      return d.protoName('proto');
    case 'direction':
      return d.directionName('direction');
    case 'interface':
      return 'interface';
    case 'port':
      return 'dst_port';
  }
}

/**
 * The SQL answering `question` on the engine of `d` (DuckDB by default). One text for both
 * engines: where they differ, the dialect says how. Aliases never hide a column another part of
 * the same SELECT still reads as that column (ClickHouse resolves aliases before columns).
 */
export function questionSql(question: Question, o: QuestionOptions, d: SqlDialect = DUCKDB_DIALECT): string {
  const filter = where(d, o);
  const limit = Math.trunc(o.limit);
  const flows = d.flows;
  switch (question) {
    case 'top talkers':
      return `SELECT ${d.ipText('hi', 'lo', 'etype')} AS address, bytes, packets, flows FROM (
        SELECT src_ip_hi AS hi, src_ip_lo AS lo, max(etype) AS etype, ${TOTALS} FROM ${flows} ${filter}
        GROUP BY src_ip_hi, src_ip_lo ORDER BY bytes DESC LIMIT ${limit}) ORDER BY bytes DESC, address`;
    case 'top ports':
      return `SELECT ${d.protoName('proto')} AS protocol, dst_port AS port, ${TOTALS} FROM ${flows} ${filter}
        GROUP BY proto, dst_port ORDER BY bytes DESC, proto, port LIMIT ${limit}`;
    case 'top conversations':
      return `SELECT ${d.ipText('a_hi', 'a_lo', 'etype')} AS address_a, ${d.ipText('b_hi', 'b_lo', 'etype')} AS address_b,
          ${d.protoName('proto')} AS protocol, bytes, packets, flows FROM (
        SELECT a_hi, a_lo, b_hi, b_lo, max(etype) AS etype, proto, ${TOTALS} FROM (
          SELECT CASE WHEN ${SRC_FIRST} THEN src_ip_hi ELSE dst_ip_hi END AS a_hi,
            CASE WHEN ${SRC_FIRST} THEN src_ip_lo ELSE dst_ip_lo END AS a_lo,
            CASE WHEN ${SRC_FIRST} THEN dst_ip_hi ELSE src_ip_hi END AS b_hi,
            CASE WHEN ${SRC_FIRST} THEN dst_ip_lo ELSE src_ip_lo END AS b_lo,
            etype, proto, bytes, packets FROM ${flows} ${filter})
        GROUP BY a_hi, a_lo, b_hi, b_lo, proto ORDER BY bytes DESC LIMIT ${limit}) ORDER BY bytes DESC, address_a`;
    case 'flows':
      return `SELECT ${d.timeText('time_start')} AS time_start, ${d.timeText('time_end')} AS time_end, interface,
          ${d.directionName('direction')} AS direction, ${d.protoName('proto')} AS protocol,
          ${d.ipText('src_ip_hi', 'src_ip_lo', 'etype')} AS src_addr, src_port,
          ${d.ipText('dst_ip_hi', 'dst_ip_lo', 'etype')} AS dst_addr, dst_port, bytes, packets
        FROM (SELECT *, time_end AS end_order FROM ${flows} ${filter} ORDER BY time_end DESC LIMIT ${limit})
        ORDER BY end_order`;
    case 'tcp health':
      // Per destination (address, port, protocol): dropped packets and bytes, retransmitted
      // segments, the RTT range and the slowest handshake of the flows with health measured.
      // The inner order ends on the group key, so the LIMIT keeps the same rows on every engine.
      return `SELECT ${d.ipText('hi', 'lo', 'etype')} AS address, port, ${d.protoName('proto')} AS protocol, flows,
          dropped_packets, dropped_bytes, retransmitted, min_rtt_ns, max_rtt_ns, max_handshake_ns FROM (
        SELECT dst_ip_hi AS hi, dst_ip_lo AS lo, max(etype) AS etype, dst_port AS port, proto, count(*) AS flows,
          sum(drop_packets) AS dropped_packets, sum(drop_bytes) AS dropped_bytes,
          sum(retrans_packets) AS retransmitted,
          coalesce(min(CASE WHEN rtt_last_ns > 0 THEN rtt_min_ns END), 0) AS min_rtt_ns,
          max(rtt_max_ns) AS max_rtt_ns, max(handshake_rtt_ns) AS max_handshake_ns
        FROM ${flows} ${where(d, o, HAS_HEALTH)}
        GROUP BY dst_ip_hi, dst_ip_lo, dst_port, proto
        ORDER BY ${HEALTH_ORDER}, hi, lo, port, proto LIMIT ${limit}) ORDER BY ${HEALTH_ORDER}, address, port, protocol`;
    case 'timeline':
      // Bucket and series get names no column has, so grouping by them never meets an alias.
      return `SELECT ${d.bucketText('bucket')} AS time, series AS ${o.by === 'total' ? 'series' : o.by}, ${TOTALS}
        FROM (SELECT ${d.timeBucket('time_end', o.stepMs)} AS bucket, ${timelineSeries(d, o.by)} AS series, bytes, packets
          FROM ${flows} ${filter})
        GROUP BY bucket, series ORDER BY bucket, series`;
  }
}

/** SQL of every flow in the window, for `export-parquet` (DuckDB). */
export function windowSql(o: Pick<QuestionOptions, 'sinceMs' | 'untilMs'>): string {
  return `SELECT * FROM flows ${where(DUCKDB_DIALECT, { ...o, limit: 0, by: 'total', stepMs: 0 })} ORDER BY time_end`;
}
