/**
 * The reference's Accounter as an async-iterable transform: record batches in, evicted flow
 * batches out. The whole cache is evicted as one batch when a new flow would exceed `maxEntries`,
 * on every active-timeout tick, and when the input ends (only then does the output end).
 */
import { EventBatch, V2_EVENT_WORDS } from '../codec/event-batch.ts';
import type { RecordBatch } from '../codec/record-batch.ts';
import { rowWords } from '../codec/row-words.ts';
import { V2_KEY_WORDS, V2_METRICS_WORD, V2_ROW_WORDS } from '../codec/v2-layout.ts';
import { type InterfaceNames, NO_INTERFACE_NAMES } from '../model/interfaces.ts';
import { type Clock, systemClock } from './clock.ts';
import type { DnsSections } from './dns-sections.ts';
import { FlowTable } from './flow-table.ts';

/** Why a batch was evicted. */
export type EvictionReason = 'full' | 'timeout' | 'end';

/** Settings of an {@link Accounter}, named as the reference's constructor arguments. */
export interface AccounterOptions {
  /** Flows cached before the whole cache is evicted (reference default 1000). */
  maxEntries: number;
  /** Evicted batches that may wait for the consumer before accounting pauses its input. */
  evictBufferLen: number;
  /**
   * Active timeout: the whole cache is evicted this often (reference default 5 s). In
   * `record-time` mode it must be at least 1 ns, the finest step a record's time takes.
   */
  evictTimeoutMs: number;
  /**
   * What drives the active timeout: `clock` ticks on the wall clock (live capture); `record-time`
   * follows the records' own last-seen times (captures read from files).
   */
  activeTimeoutBy?: 'clock' | 'record-time';
  /** Timer source for `clock` mode (tests pass a fake). */
  clock?: Clock;
  /** Names attached to evicted batches; defaults to those of the latest input batch. */
  interfaces?: InterfaceNames;
  /** Told about every eviction (metrics, logs). */
  onEvict?: (reason: EvictionReason, flows: number) => void;
  /**
   * DNS tracking: the DNS sections of the rows accounted are kept here by flow and joined into
   * each evicted flow's row at its eviction (dns-sections.ts); absent: rows' DNS is not read.
   */
  dnsSections?: DnsSections;
  /**
   * Asked when a tick (or the end) finds no flow cached: true evicts an empty batch all the same,
   * so the consumer can hand out what it holds for the eviction (the pipeline's waiting health
   * rows, src/account/health-join.ts). Empty caches are never evicted when absent.
   */
  evictWhenEmpty?: () => boolean;
}

const NS_PER_MS = 1_000_000;
const W_LAST = V2_KEY_WORDS + V2_METRICS_WORD.LAST_SEEN_NS;

/** Last-seen time of record `i` of `words` (records of `strideWords` words), exactly. */
function lastSeenNs(words: Int32Array, strideWords: number, i: number): bigint {
  const r = i * strideWords + W_LAST;
  return (BigInt(words[r + 1] >>> 0) << 32n) | BigInt(words[r] >>> 0);
}

/** Accumulates flows in memory and evicts them in batches; one instance serves one input. */
export class Accounter {
  readonly #options: AccounterOptions;
  readonly #table: FlowTable;
  readonly #out: RecordBatch[] = [];
  /** Evicted batches whose buffers are not yet recycled (weakly: consumers may keep them). */
  readonly #lent = new WeakSet<RecordBatch>();
  /** A recycled buffer the next eviction writes its rows into, when they fit. */
  #spare: Buffer | undefined;
  #interfaces: InterfaceNames;
  #ended = false;
  #failure: unknown;
  #timeoutPending = false;
  /** End of the current record-time window (exclusive); undefined until the first record. */
  #windowEndNs: bigint | undefined;
  #wakeConsumer?: () => void;
  #wakeProducer?: () => void;
  #started = false;
  /** The active timeout in whole nanoseconds, for record-time windows. */
  readonly #timeoutNs: bigint;

  constructor(options: AccounterOptions) {
    for (const key of ['maxEntries', 'evictBufferLen', 'evictTimeoutMs'] as const) {
      const value = options[key];
      if (!Number.isFinite(value) || value <= 0)
        throw new RangeError(`Accounter ${key} must be positive, got ${value}`);
    }
    this.#options = options;
    this.#table = new FlowTable(options.maxEntries);
    this.#interfaces = options.interfaces ?? NO_INTERFACE_NAMES;
    const timeoutNs = Math.round(options.evictTimeoutMs * NS_PER_MS);
    if (options.activeTimeoutBy === 'record-time' && timeoutNs < 1) {
      throw new RangeError(
        `Accounter evictTimeoutMs ${options.evictTimeoutMs} is below 1 ns, the finest step of a record's time`,
      );
    }
    this.#timeoutNs = BigInt(timeoutNs);
  }

  /** Flows cached now. */
  get cachedFlows(): number {
    return this.#table.size;
  }

  /** Bytes the flow cache occupies. */
  get cacheHeapBytes(): number {
    return this.#table.heapBytes;
  }

  /**
   * Accounts every batch of `input` (v2 rows, or flow events from a capture parser); the
   * returned iterable yields evicted batches of v2 rows until input ends. An input batch is read
   * only until the next is asked for (its producer may reuse the buffer then): the cache copies
   * what it keeps.
   */
  account(input: AsyncIterable<RecordBatch | EventBatch>): AsyncIterable<RecordBatch> {
    if (this.#started)
      throw new Error('an Accounter accounts one input only; create another for a second input');
    this.#started = true;
    const byClock = (this.#options.activeTimeoutBy ?? 'clock') === 'clock';
    const clock = this.#options.clock ?? systemClock;
    const timer = byClock ? clock.setInterval(() => this.#onTick(), this.#options.evictTimeoutMs) : undefined;
    const pump = this.#pump(input, byClock).finally(() => {
      if (timer !== undefined) clock.clearInterval(timer);
    });
    pump.catch(() => {}); // failure is delivered to the consumer through #failure
    return { [Symbol.asyncIterator]: () => this.#iterator() };
  }

  async #pump(input: AsyncIterable<RecordBatch | EventBatch>, byClock: boolean): Promise<void> {
    try {
      for await (const batch of input) {
        if (this.#options.interfaces === undefined) this.#interfaces = batch.interfaces;
        const events = batch instanceof EventBatch;
        const words = events ? batch.words() : rowWords(batch);
        const stride = events ? V2_EVENT_WORDS : V2_ROW_WORDS;
        if (!byClock && this.#windowEndNs === undefined && batch.count > 0) {
          this.#windowEndNs = lastSeenNs(words, stride, 0) + this.#timeoutNs;
        }
        let from = 0;
        const dns = this.#options.dnsSections;
        for (;;) {
          const sections = events ? batch.sections : undefined;
          const stop = this.#table.add(words, stride, batch.count, from, this.#windowEndNs, sections);
          // The records accounted before this stop, whose flows the eviction below may take.
          if (dns !== undefined) {
            if (!events) dns.absorb(words, from, this.#table.stoppedAt);
            else if (sections !== undefined) dns.absorbSections(sections, from, this.#table.stoppedAt);
          }
          if (stop === 'done') break;
          from = this.#table.stoppedAt;
          await this.#spaceForEviction();
          if (stop === 'full') {
            this.#evict('full');
          } else {
            this.#evict('timeout');
            // Windows are fixed-length from the first record, as the reference's ticker is from
            // start: jump to the window holding the row in one step, however far ahead it lies.
            const windowEndNs = this.#windowEndNs as bigint;
            const passed = (lastSeenNs(words, stride, from) - windowEndNs) / this.#timeoutNs + 1n;
            this.#windowEndNs = windowEndNs + passed * this.#timeoutNs;
          }
        }
        await this.#spaceForEviction();
      }
    } catch (err) {
      // Flows counted before the input failed are still delivered, then the failure.
      this.#failure = err;
    } finally {
      this.#evict('end');
      this.#ended = true;
      this.#wakeConsumer?.();
    }
  }

  #onTick(): void {
    if (this.#ended) return;
    if (this.#out.length >= this.#options.evictBufferLen) {
      this.#timeoutPending = true; // evicted as soon as the consumer makes room
      return;
    }
    this.#evict('timeout');
  }

  /**
   * Takes back the buffer of `batch`, a batch this accounter evicted, for a later eviction: the
   * caller promises that nothing reads `batch` any more (every sink it went to is done with it).
   * Of two recycled buffers the larger is kept; a batch recycled twice, or another accounter's,
   * is not taken.
   */
  recycle(batch: RecordBatch): void {
    if (!this.#lent.has(batch)) return;
    this.#lent.delete(batch);
    if (this.#spare === undefined || this.#spare.length < batch.bytes.length) this.#spare = batch.bytes;
  }

  #evict(reason: EvictionReason): void {
    if (this.#table.size === 0 && !this.#options.evictWhenEmpty?.()) return;
    const batch = this.#table.evictAll(this.#interfaces, this.#spare);
    if (batch.bytes === this.#spare) this.#spare = undefined;
    this.#options.dnsSections?.join(batch);
    this.#lent.add(batch);
    this.#out.push(batch);
    this.#options.onEvict?.(reason, batch.count);
    this.#wakeConsumer?.();
  }

  async #spaceForEviction(): Promise<void> {
    while (this.#out.length >= this.#options.evictBufferLen) {
      await new Promise<void>((resolve) => {
        this.#wakeProducer = resolve;
      });
    }
  }

  async *#iterator(): AsyncGenerator<RecordBatch> {
    for (;;) {
      const batch = this.#out.shift();
      if (batch !== undefined) {
        if (this.#timeoutPending && !this.#ended) {
          this.#timeoutPending = false;
          this.#evict('timeout');
        }
        const wake = this.#wakeProducer;
        this.#wakeProducer = undefined;
        wake?.();
        yield batch;
        continue;
      }
      if (this.#ended) {
        if (this.#failure !== undefined) throw this.#failure;
        return;
      }
      await new Promise<void>((resolve) => {
        this.#wakeConsumer = resolve;
      });
      this.#wakeConsumer = undefined;
    }
  }
}
