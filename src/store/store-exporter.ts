/**
 * The `store` exporter: evicted batches appended to the flow store, behind the bounded queue
 * every exporter has. The store is upkept on a timer (retention, disk budget, checkpoint). When
 * the store cannot be opened (locked by another process, damaged, no permission) the exporter
 * says so once and counts every batch as failed, so capture and the other exporters carry on;
 * it tries to open the store again at each upkeep.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import type { RecordBatch } from '../codec/record-batch.ts';
import type { StoreError } from '../errors.ts';
import { QueuedExporter, type QueuedExporterOptions } from '../export/exporter.ts';
import { FlowStore } from './flow-store.ts';
import { queriesOfFile } from './store-reader.ts';

/** How often retention, the disk budget and a checkpoint are applied. */
export const STORE_UPKEEP_INTERVAL_MS = 60_000;
/**
 * How often appended flows are committed (besides every COMMIT_ROWS): the most a killed agent
 * loses beyond its queue, and how far queries lag behind the agent.
 */
export const STORE_COMMIT_INTERVAL_MS = 1_000;

/** What the store exporter needs to know. */
export interface StoreSettings {
  /** The database file. */
  readonly file: string;
  /** Partitions whose flows all ended longer ago than this are dropped; 0 = kept forever. */
  readonly retentionMs: number;
  /** Disk budget in bytes; 0 = none. */
  readonly maxBytes: number;
}

/** Where the store exporter reports what it did to the store. */
export interface StoreLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** Options of a {@link StoreExporter}. */
export interface StoreExporterOptions extends QueuedExporterOptions {
  settings: StoreSettings;
  logger: StoreLog;
  /** Current time, for retention (tests move it). */
  nowMs?: () => number;
  /** Upkeep period; 0 = only at stop. */
  upkeepIntervalMs?: number;
}

/** Exports flows into the embedded flow store. */
export class StoreExporter extends QueuedExporter {
  readonly name = 'store';
  readonly #settings: StoreSettings;
  readonly #logger: StoreLog;
  readonly #nowMs: () => number;
  readonly #timer: NodeJS.Timeout | undefined;
  readonly #commitTimer: NodeJS.Timeout;
  #store: FlowStore | undefined;
  #openError: StoreError | undefined;
  #upkeep: Promise<void> = Promise.resolve();

  private constructor(options: StoreExporterOptions) {
    super(options);
    this.#settings = options.settings;
    this.#logger = options.logger;
    this.#nowMs = options.nowMs ?? Date.now;
    const interval = options.upkeepIntervalMs ?? STORE_UPKEEP_INTERVAL_MS;
    if (interval > 0) {
      this.#timer = setInterval(() => {
        this.#upkeep = this.#upkeep.then(() => this.upkeep());
      }, interval).unref();
    }
    this.#commitTimer = setInterval(() => {
      this.#store?.commit().catch((err: unknown) => this.#logger.warn({ err }, 'flow store commit failed'));
    }, STORE_COMMIT_INTERVAL_MS).unref();
  }

  /** A store exporter with its store opened, or, when it cannot be, one that counts every batch as failed. */
  static async create(options: StoreExporterOptions): Promise<StoreExporter> {
    const exporter = new StoreExporter(options);
    await exporter.#open();
    return exporter;
  }

  /** Why the store could not be opened (undefined once it is open). */
  get openError(): StoreError | undefined {
    return this.#openError;
  }

  async #open(): Promise<void> {
    try {
      this.#store = await FlowStore.open(this.#settings.file);
      if (this.#openError)
        this.#logger.info({ file: this.#settings.file }, 'flow store opened; storing flows again');
      this.#openError = undefined;
      await this.upkeep();
    } catch (err) {
      const first = this.#openError === undefined;
      this.#openError = err as StoreError;
      if (first) {
        this.#logger.error(
          { err },
          'flow store unavailable: capture continues without it, batches are counted as failed',
        );
      }
    }
  }

  /**
   * Runs read-only `query` on the store: through this process's open store when it is open (see
   * FlowStore.read), else through the reader's path (a snapshot while another process holds it).
   */
  read<T>(query: (connection: DuckDBConnection) => Promise<T>): Promise<T> {
    return this.#store ? this.#store.read(query) : queriesOfFile(this.#settings.file)(query);
  }

  protected async send(batch: RecordBatch): Promise<void> {
    if (!this.#store) throw this.#openError;
    await this.#store.append(batch);
  }

  /** Applies retention and the disk budget, then checkpoints; reopens a store that could not be opened. */
  async upkeep(): Promise<void> {
    const store = this.#store;
    if (!store) {
      await this.#open();
      return;
    }
    try {
      if (this.#settings.retentionMs > 0) {
        const expired = await store.dropPartitionsBefore(this.#nowMs() - this.#settings.retentionMs);
        if (expired.length > 0)
          this.#logger.info({ partitions: expired }, 'flow store: retention dropped partitions');
      }
      if (this.#settings.maxBytes > 0) {
        const shrunk = await store.shrinkTo(this.#settings.maxBytes);
        if (shrunk.length > 0) {
          this.#logger.warn(
            { partitions: shrunk },
            'flow store: STORE_MAX_BYTES reached, oldest partitions dropped',
          );
        }
      }
      await store.checkpoint();
    } catch (err) {
      this.#logger.warn({ err }, 'flow store upkeep failed; retrying at the next one');
    }
  }

  protected override async close(): Promise<void> {
    clearInterval(this.#timer);
    clearInterval(this.#commitTimer);
    await this.#upkeep;
    await this.#store?.close();
    this.#store = undefined;
  }
}
