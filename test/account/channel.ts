/** An async iterable a test pushes batches into, so it controls exactly when input arrives. */
import type { RecordBatch } from '../../src/codec/record-batch.ts';

/** Test input: `push` batches, `end()` or `fail()` the stream; `pulled` counts batches taken. */
export class BatchChannel implements AsyncIterable<RecordBatch> {
  readonly #items: RecordBatch[] = [];
  #ended = false;
  #error: unknown;
  #wake?: () => void;
  /** Batches the consumer has taken. */
  pulled = 0;
  /** Resolves whenever the consumer waits for more input. */
  #waiting?: () => void;

  push(batch: RecordBatch): void {
    this.#items.push(batch);
    this.#wake?.();
  }

  end(): void {
    this.#ended = true;
    this.#wake?.();
  }

  fail(error: unknown): void {
    this.#error = error;
    this.end();
  }

  /** Resolves once the consumer has taken everything pushed and waits for more. */
  drained(): Promise<void> {
    if (this.#items.length === 0 && this.#wake) return Promise.resolve();
    return new Promise((resolve) => {
      this.#waiting = resolve;
    });
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<RecordBatch> {
    for (;;) {
      const item = this.#items.shift();
      if (item) {
        this.pulled++;
        yield item;
        continue;
      }
      if (this.#error !== undefined) throw this.#error;
      if (this.#ended) return;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        this.#waiting?.();
        this.#waiting = undefined;
      });
      this.#wake = undefined;
    }
  }
}
