/**
 * The reference's Accounter as an async-iterable transform: record batches in, evicted flow
 * batches out. The whole cache is evicted as one batch when a new flow would exceed `maxEntries`,
 * on every active-timeout tick, and when the input ends (only then does the output end).
 */
import { EventBatch, V2_EVENT_WORDS } from '../codec/event-batch.ts';
import type { RecordBatch } from '../codec/record-batch.ts';
import { rowWords } from '../codec/row-words.ts';
import { V2_KEY_WORDS, V2_METRICS_WORD, V2_RECORD_BYTES, V2_ROW_WORDS } from '../codec/v2-layout.ts';
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
  /**
   * Most flows one evicted batch holds (`record-time` mode only): a larger eviction goes out as
   * several batches, in the order the flows were first cached, each written when the consumer
   * has room for it, and accounting waits until the last one is out. The rows held at once are
   * then bounded by this instead of by the cache (a read of 40 000 flows a window held 17 MB of
   * rows at each eviction). Absent: each eviction is one batch, as a consumer that pairs the two
   * directions of a conversation needs (biflow.ts).
   */
  evictChunkFlows?: number;
}

const NS_PER_MS = 1_000_000;
/**
 * Recycled buffers kept for later evictions. An eviction in parts has a few parts out with the
 * sinks at once (their queues hold two batches each); with one spare, a sixth of a long read's
 * parts were written into new buffers.
 */
const MAX_SPARES = 4;
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
  /** Recycled buffers the next evictions write their rows into, when they fit (at most MAX_SPARES). */
  readonly #spares: Buffer[] = [];
  #interfaces: InterfaceNames;
  #ended = false;
  #failure: unknown;
  #timeoutPending = false;
  /** The consumer stopped reading the evicted batches. */
  #consumerGone = false;
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
    const chunk = options.evictChunkFlows;
    if (chunk !== undefined) {
      if (!Number.isInteger(chunk) || chunk < 1)
        throw new RangeError(`Accounter evictChunkFlows must be a positive integer, got ${chunk}`);
      // A clock tick evicts while the input is being accounted: only a record-time pump can wait
      // for the consumer between the parts of one eviction.
      if (options.activeTimeoutBy !== 'record-time')
        throw new RangeError('Accounter evictChunkFlows needs activeTimeoutBy record-time');
    }
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
          if (this.#consumerGone) return;
          const reason = stop === 'full' ? 'full' : 'timeout';
          // Without parts the eviction stays synchronous: the pump goes on accounting before
          // anything else runs, as a timeout tick deferred meanwhile expects.
          if (this.#inParts()) await this.#evictInParts(reason);
          else this.#evict(reason);
          if (stop === 'deadline') {
            // Windows are fixed-length from the first record, as the reference's ticker is from
            // start: jump to the window holding the row in one step, however far ahead it lies.
            const windowEndNs = this.#windowEndNs as bigint;
            const passed = (lastSeenNs(words, stride, from) - windowEndNs) / this.#timeoutNs + 1n;
            this.#windowEndNs = windowEndNs + passed * this.#timeoutNs;
          }
        }
        await this.#spaceForEviction();
        // Nobody reads what would be evicted: stop reading the input.
        if (this.#consumerGone) return;
      }
    } catch (err) {
      // Flows counted before the input failed are still delivered, then the failure.
      this.#failure = err;
    } finally {
      if (this.#inParts()) await this.#evictInParts('end');
      else this.#evict('end');
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
   * Up to MAX_SPARES are kept, the larger ones; a batch recycled twice, or another accounter's,
   * is not taken.
   */
  recycle(batch: RecordBatch): void {
    if (!this.#lent.has(batch)) return;
    this.#lent.delete(batch);
    const spares = this.#spares;
    if (spares.length < MAX_SPARES) {
      spares.push(batch.bytes);
      return;
    }
    // Full: the smallest spare makes way for a larger buffer.
    let smallest = 0;
    for (let i = 1; i < spares.length; i++) if (spares[i].length < spares[smallest].length) smallest = i;
    if (spares[smallest].length < batch.bytes.length) spares[smallest] = batch.bytes;
  }

  /** A spare buffer that holds `flows` rows, taken out of the spares; undefined when none does. */
  #spareFor(flows: number): Buffer | undefined {
    const spares = this.#spares;
    for (let i = 0; i < spares.length; i++) {
      if (spares[i].length >= flows * V2_RECORD_BYTES) {
        const spare = spares[i];
        spares[i] = spares[spares.length - 1];
        spares.pop();
        return spare;
      }
    }
    return undefined;
  }

  #evict(reason: EvictionReason): void {
    if (this.#table.size === 0 && !this.#options.evictWhenEmpty?.()) return;
    const batch = this.#table.evictAll(this.#interfaces, this.#spareFor(this.#table.size));
    this.#hand(batch);
    this.#options.onEvict?.(reason, batch.count);
  }

  /** Whether evicting the cache now takes more than one batch (`evictChunkFlows`). */
  #inParts(): boolean {
    const part = this.#options.evictChunkFlows;
    return part !== undefined && this.#table.size > part;
  }

  /**
   * Evicts the cache in parts of `evictChunkFlows` flows, waiting for room before each part after
   * the first (the caller made room for that one). A consumer that stopped reading takes no more
   * parts: the rest are dropped with the cache.
   */
  async #evictInParts(reason: EvictionReason): Promise<void> {
    const part = this.#options.evictChunkFlows as number;
    const total = this.#table.size;
    for (let from = 0; from < total && !this.#consumerGone; from += part) {
      if (from > 0) await this.#spaceForEviction();
      if (this.#consumerGone) break;
      const to = Math.min(total, from + part);
      this.#hand(this.#table.rowsOf(from, to, this.#interfaces, this.#spareFor(to - from)));
    }
    this.#table.clear();
    this.#options.onEvict?.(reason, total);
  }

  /** Hands an evicted batch to the consumer, with its flows' DNS sections. */
  #hand(batch: RecordBatch): void {
    this.#options.dnsSections?.join(batch);
    this.#lent.add(batch);
    this.#out.push(batch);
    this.#wakeConsumer?.();
  }

  async #spaceForEviction(): Promise<void> {
    while (this.#out.length >= this.#options.evictBufferLen && !this.#consumerGone) {
      await new Promise<void>((resolve) => {
        this.#wakeProducer = resolve;
      });
    }
  }

  async *#iterator(): AsyncGenerator<RecordBatch> {
    try {
      yield* this.#batches();
    } finally {
      // The consumer stopped early (`read | head`, an error) or read to the end: a pump waiting
      // for room must not wait for ever.
      this.#consumerGone = true;
      const wake = this.#wakeProducer;
      this.#wakeProducer = undefined;
      wake?.();
    }
  }

  async *#batches(): AsyncGenerator<RecordBatch> {
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
