/**
 * Flow events: the key and metrics of a flow record (`struct flow_event`, V2_EVENT_BYTES = the
 * first 184 bytes of a v2 row, same offsets) without the user and health sections, which only
 * the stages after accounting write. A capture parser writes one event per packet and the flow
 * table folds them; the 328-byte rows are made only when flows are evicted. Per packet, that is
 * 184 bytes written and read instead of 328 (measured: the 240 → 328-byte row made `read` a
 * tenth slower while nothing before eviction reads the added bytes).
 */

import type { Flow } from '../model/flow.ts';
import { type InterfaceNames, NO_INTERFACE_NAMES } from '../model/interfaces.ts';
import { BatchBuilder } from './batch-builder.ts';
import { RecordBatch } from './record-batch.ts';
import { int32Words } from './row-words.ts';
import { V2_EVENT_BYTES, V2_RECORD_BYTES } from './v2-layout.ts';

/** Size of `struct flow_event` in 32-bit words: event `i` starts at word `i * V2_EVENT_WORDS`. */
export const V2_EVENT_WORDS = V2_EVENT_BYTES / 4;

/** `count` flow events, event `i` at byte `i * V2_EVENT_BYTES` of `bytes`. */
export class EventBatch {
  constructor(
    /** The events; may be longer than `count` events (the rest is unused). */
    readonly bytes: Buffer,
    /** Number of events in use. */
    readonly count: number,
    /** Resolves the events' interface indexes to names. */
    readonly interfaces: InterfaceNames = NO_INTERFACE_NAMES,
  ) {}

  /** The events as words, for folding: event `i` starts at word `i * V2_EVENT_WORDS`. */
  words(): Int32Array {
    return int32Words(this.bytes, this.count * V2_EVENT_WORDS);
  }

  /** The events as v2 rows with zero user and health sections, in a new buffer (tests, tools). */
  toRecordBatch(): RecordBatch {
    const rows = Buffer.alloc(this.count * V2_RECORD_BYTES);
    for (let i = 0; i < this.count; i++) {
      this.bytes.copy(rows, i * V2_RECORD_BYTES, i * V2_EVENT_BYTES, (i + 1) * V2_EVENT_BYTES);
    }
    return new RecordBatch(rows, this.count, this.interfaces);
  }

  /** Every event as a `Flow` object (allocates; tests and tools, not per-packet paths). */
  flows(): IterableIterator<Flow> {
    return this.toRecordBatch().flows();
  }
}

/**
 * Appends zeroed events and hands them out as batches, lending and reusing buffers by the rule of
 * {@link BatchBuilder}. Parsers write an event's fields at the row offsets of `V2` (all of them
 * below V2_EVENT_BYTES) from the offset `appendRow()` returns.
 */
export class EventBatchBuilder extends BatchBuilder<EventBatch> {
  constructor(
    initialEvents = 1024,
    /** Names handed to every batch this builder finishes. */
    readonly interfaces: InterfaceNames = NO_INTERFACE_NAMES,
  ) {
    super(V2_EVENT_BYTES, initialEvents);
  }

  protected batchOf(bytes: Buffer, count: number): EventBatch {
    return new EventBatch(bytes, count, this.interfaces);
  }
}
