/**
 * The named questions of `flowtap query`, each as one SQL statement over the `flows` view.
 * Grouping is done on the stored integer halves of addresses and only the rows returned (after
 * the LIMIT) are turned into text, so the questions stay fast on millions of flows.
 */
import { IP_BYTES } from '../model/ip.ts';

/** The named questions. */
export const QUESTIONS = ['top talkers', 'top ports', 'top conversations', 'flows', 'timeline'] as const;
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

/** A SQL TIMESTAMP_NS literal of Unix milliseconds `ms`. */
export function timestampLiteral(ms: number): string {
  return `TIMESTAMP_NS '${new Date(ms).toISOString().replace('T', ' ').replace('Z', '')}'`;
}

/** SQL matching rows whose `side` (`src` or `dst`) address is `address` (16 bytes). */
function addressIs(side: 'src' | 'dst', address: Uint8Array): string {
  if (address.length !== IP_BYTES) throw new RangeError(`an address has ${IP_BYTES} bytes`);
  const b = Buffer.from(address);
  return `(${side}_ip_hi = ${b.readBigUInt64BE(0)}::UBIGINT AND ${side}_ip_lo = ${b.readBigUInt64BE(8)}::UBIGINT)`;
}

/** The WHERE clause of `options`' filters. */
function where(o: QuestionOptions): string {
  const terms: string[] = [];
  if (o.sinceMs !== undefined) terms.push(`time_end >= ${timestampLiteral(o.sinceMs)}`);
  if (o.untilMs !== undefined) terms.push(`time_end < ${timestampLiteral(o.untilMs)}`);
  if (o.host) terms.push(`(${addressIs('src', o.host)} OR ${addressIs('dst', o.host)})`);
  if (o.port !== undefined) terms.push(`(src_port = ${o.port} OR dst_port = ${o.port})`);
  return terms.length === 0 ? '' : `WHERE ${terms.join(' AND ')}`;
}

const TOTALS = 'sum(bytes) AS bytes, sum(packets) AS packets, count(*) AS flows';
/** True when the source address sorts at or before the destination address. */
const SRC_FIRST = '(src_ip_hi < dst_ip_hi OR (src_ip_hi = dst_ip_hi AND src_ip_lo <= dst_ip_lo))';

const TIMELINE_SERIES: Record<TimelineKey, string> = {
  total: "'total'",
  protocol: 'flowtap_proto_name(proto)',
  direction: 'flowtap_direction_name(direction)',
  interface: 'interface',
  port: 'dst_port',
};

/** The SQL answering `question`. */
export function questionSql(question: Question, o: QuestionOptions): string {
  const filter = where(o);
  const limit = Math.trunc(o.limit);
  switch (question) {
    case 'top talkers':
      return `SELECT flowtap_ip_text(hi, lo, etype) AS address, bytes, packets, flows FROM (
        SELECT src_ip_hi AS hi, src_ip_lo AS lo, max(etype) AS etype, ${TOTALS} FROM flows ${filter}
        GROUP BY src_ip_hi, src_ip_lo ORDER BY bytes DESC LIMIT ${limit}) ORDER BY bytes DESC, address`;
    case 'top ports':
      return `SELECT flowtap_proto_name(proto) AS protocol, dst_port AS port, ${TOTALS} FROM flows ${filter}
        GROUP BY proto, dst_port ORDER BY bytes DESC, proto, port LIMIT ${limit}`;
    case 'top conversations':
      return `SELECT flowtap_ip_text(a_hi, a_lo, etype) AS address_a, flowtap_ip_text(b_hi, b_lo, etype) AS address_b,
          flowtap_proto_name(proto) AS protocol, bytes, packets, flows FROM (
        SELECT a_hi, a_lo, b_hi, b_lo, max(etype) AS etype, proto, ${TOTALS} FROM (
          SELECT CASE WHEN ${SRC_FIRST} THEN src_ip_hi ELSE dst_ip_hi END AS a_hi,
            CASE WHEN ${SRC_FIRST} THEN src_ip_lo ELSE dst_ip_lo END AS a_lo,
            CASE WHEN ${SRC_FIRST} THEN dst_ip_hi ELSE src_ip_hi END AS b_hi,
            CASE WHEN ${SRC_FIRST} THEN dst_ip_lo ELSE src_ip_lo END AS b_lo,
            etype, proto, bytes, packets FROM flows ${filter})
        GROUP BY a_hi, a_lo, b_hi, b_lo, proto ORDER BY bytes DESC LIMIT ${limit}) ORDER BY bytes DESC, address_a`;
    case 'flows':
      return `SELECT * FROM (
        SELECT time_start, time_end, interface, flowtap_direction_name(direction) AS direction,
          flowtap_proto_name(proto) AS protocol, src_addr, src_port, dst_addr, dst_port, bytes, packets
        FROM flows ${filter} ORDER BY time_end DESC LIMIT ${limit}) ORDER BY time_end`;
    case 'timeline':
      return `SELECT time_bucket(to_milliseconds(${Math.trunc(o.stepMs)}), time_end::TIMESTAMP) AS time,
          ${TIMELINE_SERIES[o.by]} AS ${o.by === 'total' ? 'series' : o.by}, ${TOTALS}
        FROM flows ${filter} GROUP BY ALL ORDER BY 1, 2`;
  }
}

/** SQL of every flow in the window, for `export-parquet`. */
export function windowSql(o: Pick<QuestionOptions, 'sinceMs' | 'untilMs'>): string {
  return `SELECT * FROM flows ${where({ ...o, limit: 0, by: 'total', stepMs: 0 })} ORDER BY time_end`;
}
