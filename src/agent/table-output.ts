/**
 * The `json` export for people at a terminal (`--output table`, the default when stdout is one):
 * each evicted batch is appended as a table, largest flows first, with human byte counts, protocol
 * and service names (ICMP types for ICMP flows) and directions. Pipes and files get JSON lines (src/export/json-lines.ts) instead.
 */
import type { Writable } from 'node:stream';
import type { RecordBatch } from '../codec/record-batch.ts';
import { type BatchResult, QueuedExporter } from '../export/exporter.ts';
import type { Flow } from '../model/flow.ts';
import { formatIp } from '../model/ip.ts';
import { directionName, humanBytes, transportProtocolName } from '../model/names.ts';
import { flowServiceName } from '../model/services.ts';
import { formatRfc3339Nano } from '../model/time.ts';

const HEADER = ['END', 'INTERFACE', 'DIR', 'PROTO', 'SERVICE', 'SOURCE', 'DESTINATION', 'PACKETS', 'BYTES'];
/** Right-aligned columns (numbers). */
const NUMERIC = new Set([7, 8]);

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
  const dir = directionName(flow.direction);
  return [
    // HH:MM:SS.mmm of the last packet, UTC like every time flowtap prints.
    formatRfc3339Nano(flow.timeFlowEndNs).slice(11, 23),
    flow.interface || String(flow.ifIndex),
    dir === 'INGRESS' ? 'in' : dir === 'EGRESS' ? 'out' : '?',
    transportProtocolName(flow.proto),
    // The ICMP type (ICMP flows have no ports) or the IANA name of the port.
    flowServiceName(flow) || '-',
    endpoint(flow, flow.srcAddr, flow.srcPort, nameOf),
    endpoint(flow, flow.dstAddr, flow.dstPort, nameOf),
    String(flow.packets),
    humanBytes(flow.bytes),
  ];
}

/** The rows of `batch` under a header, columns padded to fit, largest flows (by bytes) first. */
export function formatTable(batch: RecordBatch, nameOf?: NameOf): string {
  const flows = [...batch.flows()].sort((a, b) => b.bytes - a.bytes);
  const rows = [HEADER, ...flows.map((flow) => tableRow(flow, nameOf))];
  const widths = HEADER.map((_, col) => Math.max(...rows.map((r) => r[col].length)));
  let text = '';
  for (const row of rows) {
    const cells = row.map((cell, col) =>
      NUMERIC.has(col) ? cell.padStart(widths[col]) : cell.padEnd(widths[col]),
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
}

/** Prints evicted batches as tables; a slow terminal costs counted drops, not memory. */
export class TableOutput extends QueuedExporter {
  readonly name = 'json';
  readonly #out: Writable;
  readonly #nameOf: NameOf | undefined;

  constructor(options: TableOutputOptions) {
    super({ maxQueuedBatches: options.maxQueuedBatches, onResult: options.onResult });
    this.#out = options.out;
    this.#nameOf = options.nameOf;
  }

  protected async send(batch: RecordBatch): Promise<void> {
    if (this.#out.write(formatTable(batch, this.#nameOf))) return;
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
