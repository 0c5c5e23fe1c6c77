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
import { transportProtocolName, tunnelLabel } from '../model/names.ts';
import { flowServiceName } from '../model/services.ts';
import { timestampLiteral } from '../store/questions.ts';
import type { StoreQueries } from '../store/store-reader.ts';
import type { HealthSnapshot } from './health.ts';
import type { ChartSeries, FlowRow, TalkerRow, WebFilter, WebSnapshot } from './snapshot.ts';

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

const TOTALS = 'sum(bytes) AS bytes, sum(packets) AS packets, count(*) AS records';

/**
 * The top `n` groups by bytes together with the top `n` by packets, and the number of groups,
 * from the grouped query `grouped`; `text` turns the returned rows' keys into text.
 */
function topSql(grouped: string, n: number, text: string): string {
  return `WITH g AS (${grouped}),
    top AS (SELECT * FROM (SELECT * FROM g ORDER BY bytes DESC LIMIT ${n})
            UNION SELECT * FROM (SELECT * FROM g ORDER BY packets DESC LIMIT ${n}))
    SELECT ${text}, bytes, packets, records, (SELECT count(*) FROM g) AS matching
    FROM top ORDER BY bytes DESC, packets DESC`;
}

function flowsSql(window: HistoryWindow, filter: WebFilter, n: number): string {
  return topSql(
    `SELECT ${INTERFACE_NAME} AS iface, direction, proto, src_ip_hi, src_ip_lo, src_port, dst_ip_hi,
       dst_ip_lo, dst_port, icmp_type, icmp_code, max(etype) AS etype, max(crossed) AS crossed,
       max(tunnel_type) AS tunnel_type, max(tunnel_id) AS tunnel_id, max(tunnel_src) AS tunnel_src,
       max(tunnel_dst) AS tunnel_dst, ${TOTALS}
     FROM flows ${whereSql(window, filter, false)} GROUP BY ALL`,
    n,
    `iface AS interface, flowtap_direction_name(direction) AS direction, proto,
     flowtap_ip_text(src_ip_hi, src_ip_lo, etype) AS src, src_port,
     flowtap_ip_text(dst_ip_hi, dst_ip_lo, etype) AS dst, dst_port, icmp_type, icmp_code, crossed,
     tunnel_type, tunnel_id, tunnel_src, tunnel_dst`,
  );
}

function talkersSql(window: HistoryWindow, filter: WebFilter, n: number): string {
  return topSql(
    `SELECT ${INTERFACE_NAME} AS iface, src_ip_hi, src_ip_lo, max(etype) AS etype, ${TOTALS}
     FROM flows ${whereSql(window, filter, true)} GROUP BY ALL`,
    n,
    'iface AS interface, flowtap_ip_text(src_ip_hi, src_ip_lo, etype) AS address',
  );
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

/** The snapshot of `window` of the store `queries` reads, through `filter`, `topN` rows per table. */
export async function historySnapshot(
  queries: StoreQueries,
  window: HistoryWindow,
  filter: WebFilter,
  topN: number,
  health: HealthSnapshot | undefined,
): Promise<HistorySnapshot> {
  const step = chartStepSeconds(window.toMs - window.fromMs);
  const [flowRows, talkerRows, chartRows, interfaceRows] = await queries(async (c) => {
    const rows = async (sql: string): Promise<Row[]> =>
      (await c.runAndReadAll(sql)).getRowObjectsJS() as Row[];
    return [
      await rows(flowsSql(window, filter, topN)),
      await rows(talkersSql(window, filter, topN)),
      await rows(chartSql(window, filter, step)),
      await rows(interfacesSql(window)),
    ];
  });
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
    flows: flowRows.map(flowRow),
    talkers: talkerRows.map(talkerRow),
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

function flowRow(r: Row): FlowRow {
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
