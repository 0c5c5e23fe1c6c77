/**
 * Flow events: the key and metrics of a flow record (`struct flow_event`, V2_EVENT_BYTES = the
 * first 184 bytes of a v2 row, same offsets) without the user, health and DNS sections. A
 * capture parser writes one event per packet and the flow table folds them; the 432-byte rows
 * are made only when flows are evicted. Per packet, that is 184 bytes written and read instead
 * of 432 (measured: the 240 → 328-byte row made `read` a tenth slower while nothing before
 * eviction reads the added bytes). The few events for which the TCP analysis or DNS tracking
 * measured something carry it in section rows beside the batch (event-sections.ts).
 */

import type { Flow } from '../model/flow.ts';
import { type InterfaceNames, NO_INTERFACE_NAMES } from '../model/interfaces.ts';
import { BatchBuilder } from './batch-builder.ts';
import { type EventSections, EventSectionsBuilder } from './event-sections.ts';
import { RecordBatch } from './record-batch.ts';
import { int32Words, RowWords } from './row-words.ts';
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
    /** Health and DNS sections of the events that carry any; undefined when none does. */
    readonly sections: EventSections | undefined = undefined,
  ) {}

  /** The events as words, for folding: event `i` starts at word `i * V2_EVENT_WORDS`. */
  words(): Int32Array {
    return int32Words(this.bytes, this.count * V2_EVENT_WORDS);
  }

  /**
   * The events as v2 rows, in a new buffer (tests, tools): zero user sections, and the health and
   * DNS sections of the events that carry them.
   */
  toRecordBatch(): RecordBatch {
    const rows = Buffer.alloc(this.count * V2_RECORD_BYTES);
    for (let i = 0; i < this.count; i++) {
      this.bytes.copy(rows, i * V2_RECORD_BYTES, i * V2_EVENT_BYTES, (i + 1) * V2_EVENT_BYTES);
    }
    const sections = this.sections;
    if (sections !== undefined) {
      const sectionBytes = Buffer.from(
        sections.words.buffer,
        sections.words.byteOffset,
        sections.words.byteLength,
      );
      for (let k = 0; k < sections.count; k++) {
        const at = sections.events[k] * V2_RECORD_BYTES;
        sectionBytes.copy(
          rows,
          at + V2_EVENT_BYTES,
          k * V2_RECORD_BYTES + V2_EVENT_BYTES,
          (k + 1) * V2_RECORD_BYTES,
        );
      }
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
 * below V2_EVENT_BYTES) from the offset `appendRow()` returns; what is measured for an event
 * beyond them goes into its section row ({@link sectionRowOf}).
 */
export class EventBatchBuilder extends BatchBuilder<EventBatch> {
  /** Section rows of the events appended since the last `finish()`. */
  readonly sections = new EventSectionsBuilder();
  readonly #eventWords = new RowWords();

  constructor(
    initialEvents = 1024,
    /** Names handed to every batch this builder finishes. */
    readonly interfaces: InterfaceNames = NO_INTERFACE_NAMES,
  ) {
    super(V2_EVENT_BYTES, initialEvents);
  }

  /**
   * The byte offset in `sections.bytes` of the section row of the event at byte `event` of
   * `bytes` (made, holding the event's key, when the event has none yet). Write its health and
   * DNS sections at the row offsets of `V2`; re-read `sections.bytes` after each call.
   */
  sectionRowOf(event: number): number {
    return this.sections.rowOf(event / V2_EVENT_BYTES, this.#eventWords.of(this.bytes), event >>> 2);
  }

  override dropLastRow(): void {
    super.dropLastRow();
    this.sections.dropFrom(this.count);
  }

  protected batchOf(bytes: Buffer, count: number): EventBatch {
    return new EventBatch(bytes, count, this.interfaces, this.sections.take());
  }
}
