/**
 * A past window of the web view, answered from the flow store: the same top flows, top talkers
 * and throughput chart as the live snapshot, with the page's filters, computed by DuckDB over the
 * stored flows whose last packet falls in the window. The queries run through StoreQueries: on a
 * connection of the agent's own open store (between its appends), or through the reader's path
 * (a private snapshot copy while another process holds the write lock); either way the rows
 * committed up to then are seen and capture is never blocked.
 *
 * Grouping is on the stored columns (addresses as integer halves) and only the rows returned are
 * turned into text. The chart puts a flow's bytes in the step of its last packet, so a long flow
 * shows as a spike rather than spread over its life as the live chart does.
 */
import { RTT_KIND_NAMES, RttKind } from '../codec/health-figures.ts';
import { type DropReasonSource, NUMERIC_DROP_REASONS } from '../model/drop-reasons.ts';
import { transportProtocolName, tunnelLabel } from '../model/names.ts';
import { flowServiceName } from '../model/services.ts';
import { timestampLiteral } from '../store/questions.ts';
import type { StoreQueries } from '../store/store-reader.ts';
import type { HealthSnapshot } from './health.ts';
import {
  type ChartSeries,
  DROP_TOP_N,
  type DroppingHostRow,
  type FlowRow,
  type TalkerRow,
  type WebFilter,
  type WebSnapshot,
} from './snapshot.ts';

/** Points the chart of a window has at most; longer windows get coarser steps. */
export const HISTORY_CHART_POINTS = 600;
/** Longest window a page may ask for (the store's default retention is a week). */
export const MAX_HISTORY_WINDOW_MS = 366 * 86_400_000;

/** A window of the history: from (inclusive) to (exclusive), Unix ms. */
export interface HistoryWindow {
  readonly fromMs: number;
  readonly toMs: number;
}

/** The snapshot of a past window: the live snapshot's shape, with the window and chart step. */
export interface HistorySnapshot extends Omit<WebSnapshot, 'timeline' | 'aggregate'> {
  timeline: 'history';
  /** The window, Unix ms. */
  fromMs: number;
  toMs: number;
  /** Seconds per chart point; each point is the step's bytes divided by its length. */
  chartStepSeconds: number;
  /** The live aggregate's counters do not apply to a window of the store. */
  aggregate: null;
}

/**
 * Reads `from` and `to` (Unix ms, or any date `Date.parse` reads) from a request's query.
 * Returns a message saying what is wrong instead when they are unusable.
 */
export function parseHistoryWindow(params: URLSearchParams): HistoryWindow | string {
  const fromMs = timeParam(params.get('from'));
  const toMs = timeParam(params.get('to'));
  if (fromMs === undefined || toMs === undefined) {
    return 'give the window as from= and to=, each Unix milliseconds or an ISO 8601 time';
  }
  if (toMs <= fromMs) return 'the window is empty: to= must be after from=';
  if (toMs - fromMs > MAX_HISTORY_WINDOW_MS) return 'the window is longer than a year; ask for a shorter one';
  return { fromMs, toMs };
}

function timeParam(text: string | null): number | undefined {
  if (text === null || text.trim() === '') return undefined;
  const ms = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  return Number.isFinite(ms) ? ms : undefined;
}

/** A SQL string literal of `text`. */
function stringLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/** The interface's name as the live view prints it (`if<index>` when the source never named it). */
const INTERFACE_NAME = "CASE WHEN interface = '' THEN 'if' || if_index ELSE interface END";

/** WHERE clause of the window and the page's filter. */
function whereSql(window: HistoryWindow, filter: WebFilter, talkers: boolean): string {
  const terms = [
    `time_end >= ${timestampLiteral(window.fromMs)}`,
    `time_end < ${timestampLiteral(window.toMs)}`,
  ];
  if (filter.interfaceName !== '') terms.push(`${INTERFACE_NAME} = ${stringLiteral(filter.interfaceName)}`);
  if (filter.proto !== undefined) terms.push(`proto = ${filter.proto}`);
  if (filter.text !== '') {
    // As the live view: a talker matches on its address, a flow on either address or port.
    const q = stringLiteral(filter.text);
    const fields = talkers
      ? ['src_addr']
      : ['src_addr', 'dst_addr', 'src_port::VARCHAR', 'dst_port::VARCHAR'];
    terms.push(`(${fields.map((f) => `contains(${f}, ${q})`).join(' OR ')})`);
  }
  return `WHERE ${terms.join(' AND ')}`;
}

/** Sums of a group, with the TCP health the live tables show (0 in the store is not measured). */
const TOTALS = `sum(bytes) AS bytes, sum(packets) AS packets, count(*) AS records,
  sum(drop_packets) AS drops, sum(drop_bytes) AS drop_bytes, sum(retrans_packets) AS retrans,
  arg_max(drop_latest_cause, time_end) FILTER (WHERE drop_packets > 0) AS drop_cause`;
const TOTAL_COLUMNS = 'bytes, packets, records, drops, drop_bytes, retrans, drop_cause';

/**
 * The flow's RTT as the live view takes it: the latest smoothed RTT when the socket's was
 * sampled, else the latest handshake time.
 */
const RTT_COLUMNS = `arg_max(rtt_last_ns, time_end) FILTER (WHERE rtt_last_ns > 0) AS rtt_smoothed,
  arg_max(handshake_rtt_ns, time_end) FILTER (WHERE handshake_rtt_ns > 0) AS rtt_handshake`;

/**
 * The top `n` groups by bytes together with the top `n` by packets and by each of `orders`, and
 * the number of groups, from the grouped query `grouped`; `text` turns the returned rows' keys
 * into text.
 */
function topSql(grouped: string, n: number, text: string, orders: readonly string[] = []): string {
  const tops = ['bytes', 'packets', ...orders]
    .map((order) => `SELECT * FROM (SELECT * FROM g ORDER BY ${order} DESC NULLS LAST LIMIT ${n})`)
    .join(' UNION ');
  return `WITH g AS (${grouped}), top AS (${tops})
    SELECT ${text}, ${TOTAL_COLUMNS}, (SELECT count(*) FROM g) AS matching
    FROM top ORDER BY bytes DESC, packets DESC`;
}

/** The flows grouped by key, with their totals, RTT and identity columns. */
function groupedFlowsSql(window: HistoryWindow, filter: WebFilter): string {
  return `SELECT ${INTERFACE_NAME} AS iface, direction, proto, src_ip_hi, src_ip_lo, src_port, dst_ip_hi,
       dst_ip_lo, dst_port, icmp_type, icmp_code, max(etype) AS etype, max(crossed) AS crossed,
       max(tunnel_type) AS tunnel_type, max(tunnel_id) AS tunnel_id, max(tunnel_src) AS tunnel_src,
       max(tunnel_dst) AS tunnel_dst, ${TOTALS}, ${RTT_COLUMNS}
     FROM flows ${whereSql(window, filter, false)} GROUP BY ALL`;
}

const FLOW_TEXT = `iface AS interface, flowtap_direction_name(direction) AS direction, proto,
     flowtap_ip_text(src_ip_hi, src_ip_lo, etype) AS src, src_port,
     flowtap_ip_text(dst_ip_hi, dst_ip_lo, etype) AS dst, dst_port, icmp_type, icmp_code, crossed,
     tunnel_type, tunnel_id, tunnel_src, tunnel_dst, rtt_smoothed, rtt_handshake`;

function flowsSql(window: HistoryWindow, filter: WebFilter, n: number): string {
  return topSql(groupedFlowsSql(window, filter), n, FLOW_TEXT, [
    'drops',
    'coalesce(rtt_smoothed, rtt_handshake)',
  ]);
}

function talkersSql(window: HistoryWindow, filter: WebFilter, n: number): string {
  return topSql(
    `SELECT ${INTERFACE_NAME} AS iface, src_ip_hi, src_ip_lo, max(etype) AS etype, ${TOTALS}
     FROM flows ${whereSql(window, filter, true)} GROUP BY ALL`,
    n,
    'iface AS interface, flowtap_ip_text(src_ip_hi, src_ip_lo, etype) AS address',
  );
}

/** The flows with the most dropped packets, as the live "who is dropping" list. */
function droppingFlowsSql(window: HistoryWindow, filter: WebFilter): string {
  return `WITH g AS (${groupedFlowsSql(window, filter)})
    SELECT ${FLOW_TEXT}, ${TOTAL_COLUMNS} FROM g WHERE drops > 0 ORDER BY drops DESC LIMIT ${DROP_TOP_N}`;
}

/** The hosts (source address on an interface) with the most dropped packets. */
function droppingHostsSql(window: HistoryWindow, filter: WebFilter): string {
  return `WITH g AS (
      SELECT ${INTERFACE_NAME} AS iface, src_ip_hi, src_ip_lo, max(etype) AS etype, ${TOTALS}
      FROM flows ${whereSql(window, filter, true)} GROUP BY ALL)
    SELECT iface AS interface, flowtap_ip_text(src_ip_hi, src_ip_lo, etype) AS address, drops,
      drop_bytes, drop_cause
    FROM g WHERE drops > 0 ORDER BY drops DESC LIMIT ${DROP_TOP_N}`;
}

/** Bytes per chart step per (interface, direction); the interface filter applies, the others do not, as live. */
function chartSql(window: HistoryWindow, filter: WebFilter, stepSeconds: number): string {
  const fromUs = window.fromMs * 1_000;
  return `SELECT ${INTERFACE_NAME} AS iface, flowtap_direction_name(direction) AS direction,
      ((epoch_us(time_end) - ${fromUs}) // ${stepSeconds * 1_000_000})::BIGINT AS step, sum(bytes) AS bytes
    FROM flows ${whereSql(window, { ...filter, proto: undefined, text: '' }, false)}
    GROUP BY ALL ORDER BY iface, direction`;
}

function interfacesSql(window: HistoryWindow): string {
  return `SELECT DISTINCT ${INTERFACE_NAME} AS iface FROM flows
    ${whereSql(window, { interfaceName: '', proto: undefined, text: '' }, false)} ORDER BY iface`;
}

/** Seconds per chart point for a window of `spanMs`. */
export function chartStepSeconds(spanMs: number): number {
  return Math.max(1, Math.ceil(spanMs / 1_000 / HISTORY_CHART_POINTS));
}

type Row = Record<string, unknown>;

/**
 * The snapshot of `window` of the store `queries` reads, through `filter`, `topN` rows per table;
 * `dropReasons` names drop reasons (asked only when a row has drops).
 */
export async function historySnapshot(
  queries: StoreQueries,
  window: HistoryWindow,
  filter: WebFilter,
  topN: number,
  health: HealthSnapshot | undefined,
  dropReasons: DropReasonSource = () => NUMERIC_DROP_REASONS,
): Promise<HistorySnapshot> {
  const step = chartStepSeconds(window.toMs - window.fromMs);
  const [flowRows, talkerRows, chartRows, interfaceRows, droppingFlowRows, droppingHostRows] = await queries(
    async (c) => {
      const rows = async (sql: string): Promise<Row[]> =>
        (await c.runAndReadAll(sql)).getRowObjectsJS() as Row[];
      return [
        await rows(flowsSql(window, filter, topN)),
        await rows(talkersSql(window, filter, topN)),
        await rows(chartSql(window, filter, step)),
        await rows(interfacesSql(window)),
        await rows(droppingFlowsSql(window, filter)),
        await rows(droppingHostsSql(window, filter)),
      ];
    },
  );
  const toFlowRow = (r: Row) => flowRow(r, dropReasons);
  const startSecond = Math.floor(window.fromMs / 1_000);
  const points = Math.ceil((window.toMs - window.fromMs) / 1_000 / step);
  return {
    timeline: 'history',
    fromMs: window.fromMs,
    toMs: window.toMs,
    chartStepSeconds: step,
    chartStartSecond: startSecond,
    endSecond: startSecond + (points - 1) * step,
    chart: chartSeries(chartRows, points, step),
    topWindowSeconds: Math.round((window.toMs - window.fromMs) / 1_000),
    topN,
    flows: flowRows.map(toFlowRow),
    talkers: talkerRows.map(talkerRow),
    dropping: {
      flows: droppingFlowRows.map(toFlowRow),
      hosts: droppingHostRows.map((r) => droppingHostRow(r, dropReasons)),
    },
    dropTopN: DROP_TOP_N,
    matchingFlows: Number(flowRows[0]?.matching ?? 0),
    matchingTalkers: Number(talkerRows[0]?.matching ?? 0),
    interfaces: interfaceRows.map((r) => String(r.iface)),
    filter: {
      interface: filter.interfaceName,
      proto: filter.proto === undefined ? '' : transportProtocolName(filter.proto),
      q: filter.text,
    },
    aggregate: null,
    // The flow store keeps no DNS columns yet: a past window has no DNS panel.
    dns: null,
    health: health ?? null,
    historyAvailable: true,
  };
}

function flowRow(r: Row, dropReasons: DropReasonSource): FlowRow {
  const smoothed =
    r.rtt_smoothed === null || r.rtt_smoothed === undefined ? undefined : Number(r.rtt_smoothed);
  const handshake =
    r.rtt_handshake === null || r.rtt_handshake === undefined ? undefined : Number(r.rtt_handshake);
  const rtt: Pick<FlowRow, 'rttNs' | 'rttKind'> =
    smoothed !== undefined
      ? { rttNs: smoothed, rttKind: RTT_KIND_NAMES[RttKind.SMOOTHED] }
      : handshake !== undefined
        ? { rttNs: handshake, rttKind: RTT_KIND_NAMES[RttKind.HANDSHAKE] }
        : {};
  return {
    interface: String(r.interface),
    direction: String(r.direction),
    proto: transportProtocolName(Number(r.proto)),
    src: String(r.src),
    srcPort: Number(r.src_port),
    dst: String(r.dst),
    dstPort: Number(r.dst_port),
    service: flowServiceName({
      proto: Number(r.proto),
      srcPort: Number(r.src_port),
      dstPort: Number(r.dst_port),
      icmpType: Number(r.icmp_type),
      icmpCode: Number(r.icmp_code),
    }),
    bytes: Number(r.bytes),
    packets: Number(r.packets),
    records: Number(r.records),
    crossed: String(r.crossed ?? ''),
    tunnel: tunnelOf(r),
    ...rtt,
    drops: Number(r.drops ?? 0),
    dropBytes: Number(r.drop_bytes ?? 0),
    dropReason: storedDropReason(r, dropReasons),
    retrans: Number(r.retrans ?? 0),
  };
}

/** The name of a group's latest drop reason, '' without drops. */
function storedDropReason(r: Row, dropReasons: DropReasonSource): string {
  return Number(r.drops ?? 0) > 0 && r.drop_cause !== null && r.drop_cause !== undefined
    ? dropReasons().nameOf(Number(r.drop_cause))
    : '';
}

function droppingHostRow(r: Row, dropReasons: DropReasonSource): DroppingHostRow {
  return {
    interface: String(r.interface),
    address: String(r.address),
    drops: Number(r.drops),
    dropBytes: Number(r.drop_bytes),
    dropReason: storedDropReason(r, dropReasons),
  };
}

/** The tunnel text of a stored flow row, as the live view's `tunnelText` prints it. */
function tunnelOf(r: Row): string {
  return tunnelLabel(
    Number(r.tunnel_type ?? 0),
    Number(r.tunnel_id ?? 0),
    String(r.tunnel_src),
    String(r.tunnel_dst),
  );
}

function talkerRow(r: Row): TalkerRow {
  return {
    interface: String(r.interface),
    address: String(r.address),
    bytes: Number(r.bytes),
    packets: Number(r.packets),
    records: Number(r.records),
  };
}

/** One series per (interface, direction) with a bytes-per-second value for every step. */
function chartSeries(rows: Row[], points: number, stepSeconds: number): ChartSeries[] {
  const series = new Map<string, ChartSeries>();
  for (const r of rows) {
    const key = `${r.iface}\n${r.direction}`;
    let s = series.get(key);
    if (!s) {
      s = {
        interface: String(r.iface),
        direction: String(r.direction),
        bytesPerSecond: new Array<number>(points).fill(0),
      };
      series.set(key, s);
    }
    const step = Number(r.step);
    if (step >= 0 && step < points) s.bytesPerSecond[step] += Number(r.bytes) / stepSeconds;
  }
  return [...series.values()];
}
