/**
 * One frame of the live terminal view, as text: totals (packets/s, bytes/s, flows, drops), top
 * flows and top talkers by rate, the last log lines. Pure: the view (live-view.ts) owns the
 * terminal, the clock and the keys, and hands this module what to draw and how big.
 */
import { humanBytes } from '../../model/names.ts';
import type { FlowRow, TalkerRow } from '../../web/snapshot.ts';

/** What the top tables are ordered by. */
export type LiveSortKey = 'bytes' | 'packets';
/** The sort keys in the order the `s` key cycles through them. */
export const LIVE_SORT_KEYS: readonly LiveSortKey[] = ['bytes', 'packets'];

/** Totals over the window. */
export interface LiveTotals {
  packetsPerSecond: number;
  bytesPerSecond: number;
  /** Flows in the agent's cache now. */
  flows: number;
  /** Packets and flows lost since start (ring buffer full, exporter queues full). */
  drops: number;
  attachedInterfaces: readonly string[];
  /** Health warnings (`no interface attached yet`). */
  warnings: readonly string[];
}

/** Everything one frame shows. */
export interface LiveFrame {
  columns: number;
  rows: number;
  /** ANSI colours (false: a terminal without colours, or NO_COLOR). */
  colour: boolean;
  paused: boolean;
  sort: LiveSortKey;
  /** Seconds the top tables' rates are averaged over. */
  windowSeconds: number;
  totals: LiveTotals;
  flows: readonly FlowRow[];
  talkers: readonly TalkerRow[];
  /** Log lines, oldest first; the last ones that fit are shown. */
  logLines: readonly string[];
  /** Address → name (reverse DNS with --resolve); the address itself when unknown. */
  nameOf?: (address: string) => string;
}

const ANSI = { bold: '1', dim: '2', red: '31', yellow: '33', blue: '34', cyan: '36', inverse: '7' } as const;
/** The colour of each direction, in every view: ingress blue, egress yellow (the web view's too). */
const DIRECTION_COLOUR: Readonly<Record<string, keyof typeof ANSI>> = { INGRESS: 'blue', EGRESS: 'yellow' };
/** Lines of the log pane at most. */
const LOG_PANE_LINES = 4;

function paint(frame: LiveFrame, style: keyof typeof ANSI, text: string): string {
  return frame.colour ? `\x1b[${ANSI[style]}m${text}\x1b[0m` : text;
}

/** `n` per second for people: 1234 → `1.2k`. */
function humanCount(n: number): string {
  if (n < 1000) return n.toFixed(n < 10 && n % 1 !== 0 ? 1 : 0);
  if (n < 1e6) return `${(n / 1e3).toFixed(1)}k`;
  return `${(n / 1e6).toFixed(1)}M`;
}

function endpoint(address: string, port: number, nameOf: LiveFrame['nameOf']): string {
  const host = nameOf?.(address) ?? address;
  if (port === 0) return host;
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Cells padded to `widths` (numeric columns right-aligned), cut to the terminal width. */
function tableLines(header: string[], rows: string[][], numeric: Set<number>, columns: number): string[] {
  const widths = header.map((_, c) => Math.max(header[c].length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, c) => (numeric.has(c) ? cell.padStart(widths[c]) : cell.padEnd(widths[c])))
      .join('  ')
      .trimEnd()
      .slice(0, columns);
  return [line(header), ...rows.map(line)];
}

function sorted<T extends { bytes: number; packets: number }>(rows: readonly T[], sort: LiveSortKey): T[] {
  return [...rows].sort((a, b) => b[sort] - a[sort] || b.bytes - a.bytes);
}

/** The frame's lines, at most `frame.rows`, none longer than `frame.columns`. */
export function renderLiveScreen(frame: LiveFrame): string[] {
  const { totals, columns } = frame;
  const perSecond = (n: number) => n / frame.windowSeconds;
  const title =
    `flowtap  ${totals.attachedInterfaces.join(',') || '-'}  rates over ${frame.windowSeconds}s, ` +
    `sorted by ${frame.sort}/s  [p]ause [s]ort [q]uit`;
  const lines = [paint(frame, 'inverse', title.padEnd(columns).slice(0, columns))];
  const totalsLine =
    `${humanBytes(totals.bytesPerSecond)}/s  ${humanCount(totals.packetsPerSecond)} pkt/s  ` +
    `${totals.flows} flows  ${totals.drops} drops${frame.paused ? '  PAUSED' : ''}`;
  lines.push(paint(frame, 'bold', totalsLine.slice(0, columns)));
  for (const warning of totals.warnings) lines.push(paint(frame, 'yellow', `! ${warning}`.slice(0, columns)));

  const logLines = frame.logLines.slice(-LOG_PANE_LINES);
  // Header, blank line, two table titles, the log pane and its rule: what is left is for rows.
  const rowsLeft = Math.max(
    2,
    frame.rows - lines.length - 4 - 2 - (logLines.length > 0 ? logLines.length + 1 : 0),
  );
  const flowRows = Math.max(1, Math.ceil(rowsLeft * 0.6));
  const talkerRows = Math.max(1, rowsLeft - flowRows);

  const flows = sorted(frame.flows, frame.sort).slice(0, flowRows);
  const flowTable = tableLines(
    ['DIR', 'PROTO', 'SERVICE', 'SOURCE', 'DESTINATION', 'RATE', 'PKT/S', 'INTERFACE'],
    flows.map((f) => [
      f.direction === 'INGRESS' ? 'in' : f.direction === 'EGRESS' ? 'out' : '?',
      f.proto,
      f.service || '-',
      endpoint(f.src, f.srcPort, frame.nameOf),
      endpoint(f.dst, f.dstPort, frame.nameOf),
      `${humanBytes(perSecond(f.bytes))}/s`,
      humanCount(perSecond(f.packets)),
      f.interface,
    ]),
    new Set([5, 6]),
    columns,
  );
  lines.push('', paint(frame, 'bold', flowTable[0]));
  flowTable.slice(1).forEach((text, i) => {
    lines.push(paint(frame, DIRECTION_COLOUR[flows[i].direction] ?? 'dim', text));
  });

  const talkers = sorted(frame.talkers, frame.sort).slice(0, talkerRows);
  const talkerTable = tableLines(
    ['TALKER', 'RATE', 'PKT/S', 'INTERFACE'],
    talkers.map((t) => [
      frame.nameOf?.(t.address) ?? t.address,
      `${humanBytes(perSecond(t.bytes))}/s`,
      humanCount(perSecond(t.packets)),
      t.interface,
    ]),
    new Set([1, 2]),
    columns,
  );
  lines.push('', paint(frame, 'bold', talkerTable[0]), ...talkerTable.slice(1));

  if (logLines.length > 0) {
    lines.push(paint(frame, 'dim', '─ log '.padEnd(columns, '─').slice(0, columns)));
    for (const log of logLines) lines.push(log.slice(0, columns));
  }
  return lines.slice(0, frame.rows);
}
