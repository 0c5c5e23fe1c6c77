/**
 * The `json` export for people at a terminal (`--output table`, the default when stdout is one):
 * each evicted batch is appended as a table, largest flows first, with human byte counts, protocol
 * and service names (ICMP types for ICMP flows) and directions. Pipes and files get JSON lines (src/export/json-lines.ts) instead.
 */
import type { Writable } from 'node:stream';
import type { RecordBatch } from '../codec/record-batch.ts';
import { type BatchResult, QueuedExporter } from '../export/exporter.ts';
import { dnsOutcome } from '../model/dns-names.ts';
import { type DropReasonNames, type DropReasonSource, NUMERIC_DROP_REASONS } from '../model/drop-reasons.ts';
import type { Flow } from '../model/flow.ts';
import type { InterfaceNames } from '../model/interfaces.ts';
import { formatIp } from '../model/ip.ts';
import {
  directionName,
  humanBytes,
  humanDurationNs,
  transportProtocolName,
  tunnelLabel,
} from '../model/names.ts';
import { flowServiceName } from '../model/services.ts';
import { formatRfc3339Nano } from '../model/time.ts';

const HEADER = ['END', 'INTERFACE', 'DIR', 'PROTO', 'SERVICE', 'SOURCE', 'DESTINATION', 'PACKETS', 'BYTES'];
/** Right-aligned columns of HEADER (numbers). */
const NUMERIC = [7, 8];

/**
 * Columns shown only when some flow of the batch has the field (issue 13), after the fixed ones:
 * a table of plain flows looks as it always did.
 */
interface OptionalColumn {
  readonly header: string;
  readonly numeric: boolean;
  /** The cell of `flow`; '' when the flow has no such field. */
  cell(flow: Flow, interfaces: InterfaceNames, dropReasons: DropReasonNames): string;
}

const OPTIONAL_COLUMNS: readonly OptionalColumn[] = [
  {
    header: 'REV PACKETS',
    numeric: true,
    cell: (flow) => (flow.reverse ? String(flow.reverse.packets) : ''),
  },
  {
    header: 'REV BYTES',
    numeric: true,
    cell: (flow) => (flow.reverse ? humanBytes(flow.reverse.bytes) : ''),
  },
  {
    header: 'VLAN',
    numeric: false,
    cell: (flow) =>
      flow.vlanInner ? `${flow.vlanOuter}.${flow.vlanInner}` : flow.vlanOuter ? String(flow.vlanOuter) : '',
  },
  {
    header: 'TUNNEL',
    numeric: false,
    cell: (flow) =>
      flow.tunnel
        ? tunnelLabel(
            flow.tunnel.type,
            flow.tunnel.id,
            formatIp(flow.tunnel.srcAddr, 0, 0),
            formatIp(flow.tunnel.dstAddr, 0, 0),
          )
        : '',
  },
  {
    header: 'CROSSED',
    numeric: false,
    cell: (flow, interfaces) =>
      flow.crossed && flow.crossed.length > 1
        ? flow.crossed
            .map((c) => `${interfaces.nameOf(c.ifIndex) || c.ifIndex} ${directionWord(c.direction)}`)
            .join(',')
        : '',
  },
  // TCP health (issue 14): the latest smoothed RTT, the handshake time, retransmitted segments,
  // dropped packets and the latest drop's reason (short name: NETFILTER_DROP).
  {
    header: 'RTT',
    numeric: true,
    cell: (flow) => (flow.health?.rtt ? humanDurationNs(flow.health.rtt.lastNs) : ''),
  },
  {
    header: 'HANDSHAKE',
    numeric: true,
    cell: (flow) =>
      flow.health?.handshakeRttNs !== undefined ? humanDurationNs(flow.health.handshakeRttNs) : '',
  },
  {
    header: 'RETRANS',
    numeric: true,
    cell: (flow) => (flow.health?.retransPackets ? String(flow.health.retransPackets) : ''),
  },
  {
    header: 'DROPS',
    numeric: true,
    cell: (flow) => (flow.health?.dropPackets ? String(flow.health.dropPackets) : ''),
  },
  {
    header: 'DROP CAUSE',
    numeric: false,
    cell: (flow, _interfaces, dropReasons) =>
      flow.health?.dropPackets && flow.health.latestDrop
        ? dropReasons.nameOf(flow.health.latestDrop.cause)
        : '',
  },
  // DNS tracking (issue 15): the name asked, how it went, how long the answer took.
  {
    header: 'DNS NAME',
    numeric: false,
    cell: (flow) =>
      flow.dns?.name === undefined ? '' : `${flow.dns.name || '.'}${flow.dns.nameTruncated ? '…' : ''}`,
  },
  { header: 'DNS', numeric: false, cell: (flow) => (flow.dns ? dnsOutcome(flow.dns) : '') },
  {
    header: 'DNS LATENCY',
    numeric: true,
    cell: (flow) => (flow.dns?.latencyNs === undefined ? '' : humanDurationNs(flow.dns.latencyNs)),
  },
];

/** `in`, `out` or `?`. */
function directionWord(direction: number): string {
  const dir = directionName(direction);
  return dir === 'INGRESS' ? 'in' : dir === 'EGRESS' ? 'out' : '?';
}

/** Address → name (reverse DNS with --resolve); absent: addresses as they are. */
export type NameOf = (address: string) => string;

function endpoint(flow: Flow, addr: Uint8Array, port: number, nameOf?: NameOf): string {
  const address = formatIp(addr, 0, flow.etype);
  const ip = nameOf?.(address) ?? address;
  if (port === 0) return ip;
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** One table row of `flow`, as cell texts. */
export function tableRow(flow: Flow, nameOf?: NameOf): string[] {
  return [
    // HH:MM:SS.mmm of the last packet, UTC like every time flowtap prints.
    formatRfc3339Nano(flow.timeFlowEndNs).slice(11, 23),
    flow.interface || String(flow.ifIndex),
    directionWord(flow.direction),
    transportProtocolName(flow.proto),
    // The ICMP type (ICMP flows have no ports) or the IANA name of the port.
    flowServiceName(flow) || '-',
    endpoint(flow, flow.srcAddr, flow.srcPort, nameOf),
    endpoint(flow, flow.dstAddr, flow.dstPort, nameOf),
    String(flow.packets),
    humanBytes(flow.bytes),
  ];
}

/**
 * The rows of `batch` under a header, columns padded to fit, largest flows (by bytes) first; the
 * optional columns appear when some flow has their field. `dropReasons` is asked for only when a
 * flow has drops.
 */
export function formatTable(
  batch: RecordBatch,
  nameOf?: NameOf,
  dropReasons: DropReasonSource = () => NUMERIC_DROP_REASONS,
): string {
  const flows = [...batch.flows()].sort((a, b) => b.bytes - a.bytes);
  const names = flows.some((f) => f.health?.dropPackets) ? dropReasons() : NUMERIC_DROP_REASONS;
  const cellOf = (c: OptionalColumn, f: Flow) => c.cell(f, batch.interfaces, names);
  const extra = OPTIONAL_COLUMNS.filter((c) => flows.some((f) => cellOf(c, f) !== ''));
  const header = [...HEADER, ...extra.map((c) => c.header)];
  const numeric = new Set([...NUMERIC, ...extra.flatMap((c, k) => (c.numeric ? [HEADER.length + k] : []))]);
  const rows = [header, ...flows.map((f) => [...tableRow(f, nameOf), ...extra.map((c) => cellOf(c, f))])];
  const widths = header.map((_, col) => Math.max(...rows.map((r) => r[col].length)));
  let text = '';
  for (const row of rows) {
    const cells = row.map((cell, col) =>
      numeric.has(col) ? cell.padStart(widths[col]) : cell.padEnd(widths[col]),
    );
    text += `${cells.join('  ').trimEnd()}\n`;
  }
  return `${text}\n`;
}

/** Settings of a {@link TableOutput}. */
export interface TableOutputOptions {
  /** Where tables go (stdout). */
  out: Writable;
  /** Batches that may wait for the terminal. */
  maxQueuedBatches: number;
  onResult?: (result: BatchResult) => void;
  /** Names of addresses (--resolve). */
  nameOf?: NameOf;
  /** Names of the kernel's drop reasons (numbers when absent). */
  dropReasons?: DropReasonSource;
}

/** Prints evicted batches as tables; a slow terminal costs counted drops, not memory. */
export class TableOutput extends QueuedExporter {
  readonly name = 'json';
  readonly #out: Writable;
  readonly #nameOf: NameOf | undefined;
  readonly #dropReasons: DropReasonSource | undefined;

  constructor(options: TableOutputOptions) {
    super({ maxQueuedBatches: options.maxQueuedBatches, onResult: options.onResult });
    this.#out = options.out;
    this.#nameOf = options.nameOf;
    this.#dropReasons = options.dropReasons;
  }

  protected async send(batch: RecordBatch): Promise<void> {
    if (this.#out.write(formatTable(batch, this.#nameOf, this.#dropReasons))) return;
    await new Promise<void>((resolve, reject) => {
      const onDrain = () => {
        this.#out.off('error', onError);
        resolve();
      };
      const onError = (err: Error) => {
        this.#out.off('drain', onDrain);
        reject(err);
      };
      this.#out.once('drain', onDrain);
      this.#out.once('error', onError);
    });
  }
}
