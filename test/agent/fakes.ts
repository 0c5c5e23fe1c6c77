/** Fake neighbours of the agent's stages: record sources and exporters. */
import { RecordBatch, writeFlowRow } from '../../src/codec/record-batch.ts';
import { V2_RECORD_BYTES } from '../../src/codec/v2-layout.ts';
import { type BatchResult, QueuedExporter } from '../../src/export/exporter.ts';
import type { Flow } from '../../src/model/flow.ts';
import { makeFlow } from '../helpers/flows.ts';

/** A batch of `count` distinct flows (source ports `firstPort`...), each `packets` packets of 100 bytes. */
export function batchOf(count: number, firstPort = 1000, packets = 1): RecordBatch {
  const bytes = Buffer.alloc(count * V2_RECORD_BYTES);
  for (let i = 0; i < count; i++) {
    writeFlowRow(
      bytes,
      i * V2_RECORD_BYTES,
      makeFlow({ srcPort: firstPort + i, packets, bytes: 100 * packets }),
    );
  }
  return new RecordBatch(bytes, count);
}

/** An exporter that keeps every flow it is sent; `hold()` makes sends wait until `release()`. */
export class RecordingExporter extends QueuedExporter {
  readonly flows: Flow[] = [];
  readonly results: BatchResult[] = [];
  #held: Array<() => void> | undefined;

  constructor(
    readonly name: string,
    maxQueuedBatches = 100,
  ) {
    super({ maxQueuedBatches, onResult: (r) => this.results.push(r) });
  }

  /** From now on every send waits for `release()`. */
  hold(): void {
    this.#held = [];
  }

  /** Lets held sends (and later ones) complete. */
  release(): void {
    const held = this.#held ?? [];
    this.#held = undefined;
    for (const resume of held) resume();
  }

  protected async send(batch: RecordBatch): Promise<void> {
    if (this.#held) await new Promise<void>((resolve) => this.#held?.push(resolve));
    for (const flow of batch.flows()) this.flows.push(flow);
  }
}
