/** Flow events (key and metrics, as a capture parser writes them) built from flows, for tests. */
import { type EventBatch, EventBatchBuilder } from '../../src/codec/event-batch.ts';
import { recordBatchOf } from '../../src/codec/record-batch.ts';
import { V2_EVENT_BYTES, V2_RECORD_BYTES } from '../../src/codec/v2-layout.ts';
import type { Flow } from '../../src/model/flow.ts';

/** The flows as one batch of events: the first V2_EVENT_BYTES of each flow's row. */
export function eventBatchOf(flows: readonly Flow[]): EventBatch {
  const rows = recordBatchOf(flows);
  const builder = new EventBatchBuilder(Math.max(flows.length, 1));
  for (let i = 0; i < flows.length; i++) {
    const at = builder.appendRow();
    rows.bytes.copy(builder.bytes, at, i * V2_RECORD_BYTES, i * V2_RECORD_BYTES + V2_EVENT_BYTES);
  }
  return builder.finish();
}
