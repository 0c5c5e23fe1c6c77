/**
 * Packets and bytes the capture counted per interface and direction, for /metrics labels
 * (`flowtap_interface_packets_total{interface="eth0",direction="ingress"}`). Rows are read in
 * place (one Map lookup per record, no object per packet); interfaces are few, and past
 * {@link MAX_INTERFACE_SERIES} series the rest are summed as `(other)`, so a host that creates
 * and deletes veths all day keeps a bounded set of series.
 */
import type { RecordBatch } from '../codec/record-batch.ts';
import { V2, V2_RECORD_BYTES } from '../codec/v2-layout.ts';
import { directionName } from '../model/names.ts';

/** Series (interface × direction) kept apart at most. */
export const MAX_INTERFACE_SERIES = 256;
/** Name of the series that sums the rest. */
export const OTHER_INTERFACES = '(other)';

/** One interface's counts in one direction. */
export interface InterfaceTotal {
  /** Interface name (`if<index>` when the capture did not name it). */
  interface: string;
  /** `ingress` or `egress`. */
  direction: string;
  packets: number;
  bytes: number;
}

/** Counts per (interface index, direction). */
export class InterfaceTotals {
  readonly #byKey = new Map<number, InterfaceTotal>();

  /** Adds every row of `batch`. */
  add(batch: RecordBatch): void {
    const b = batch.bytes;
    for (let i = 0; i < batch.count; i++) {
      const o = i * V2_RECORD_BYTES;
      const ifIndex = b.readUInt32LE(o + V2.IF_INDEX);
      const direction = b[o + V2.DIRECTION];
      let total = this.#byKey.get(ifIndex * 2 + direction);
      if (total === undefined) total = this.#newTotal(batch, ifIndex, direction);
      total.packets += batch.packetsAt(i);
      total.bytes += batch.bytesAt(i);
    }
  }

  /** Every series now, as copies. */
  totals(): InterfaceTotal[] {
    return [...new Set(this.#byKey.values())].map((t) => ({ ...t }));
  }

  #newTotal(batch: RecordBatch, ifIndex: number, direction: number): InterfaceTotal {
    const key = ifIndex * 2 + direction;
    const dir = directionName(direction).toLowerCase();
    if (this.#byKey.size >= MAX_INTERFACE_SERIES) {
      // Past the bound, further keys share one series per direction.
      const otherKey = -1 - direction;
      let other = this.#byKey.get(otherKey);
      if (!other) {
        other = { interface: OTHER_INTERFACES, direction: dir, packets: 0, bytes: 0 };
        this.#byKey.set(otherKey, other);
      }
      return other;
    }
    const total = {
      interface: batch.interfaces.nameOf(ifIndex) || `if${ifIndex}`,
      direction: dir,
      packets: 0,
      bytes: 0,
    };
    this.#byKey.set(key, total);
    return total;
  }
}
