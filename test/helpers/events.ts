/** Flow events (key and metrics, as a capture parser writes them) built from flows, for tests. */
import { type EventBatch, EventBatchBuilder } from '../../src/codec/event-batch.ts';
import { recordBatchOf } from '../../src/codec/record-batch.ts';
import { V2, V2_EVENT_BYTES, V2_RECORD_BYTES } from '../../src/codec/v2-layout.ts';
import type { Flow } from '../../src/model/flow.ts';

/**
 * The flows as one batch of events: the first V2_EVENT_BYTES of each flow's row, and a section
 * row for each flow whose health or DNS section holds anything, as a capture's TCP analysis and
 * DNS tracking write them.
 */
export function eventBatchOf(flows: readonly Flow[]): EventBatch {
  const rows = recordBatchOf(flows);
  const builder = new EventBatchBuilder(Math.max(flows.length, 1));
  for (let i = 0; i < flows.length; i++) {
    const at = builder.appendRow();
    const row = i * V2_RECORD_BYTES;
    rows.bytes.copy(builder.bytes, at, row, row + V2_EVENT_BYTES);
    const measured = rows.bytes.subarray(row + V2.RTT_MIN_NS, row + V2_RECORD_BYTES);
    if (measured.some((b) => b !== 0)) {
      const s = builder.sectionRowOf(at);
      measured.copy(builder.sections.bytes, s + V2.RTT_MIN_NS);
    }
  }
  return builder.finish();
}
