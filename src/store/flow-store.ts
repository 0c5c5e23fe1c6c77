/**
 * The writer's side of the flow store: one DuckDB file opened read-write by one process, flows
 * appended per daily partition with DuckDB's appender, whole partitions dropped for retention
 * and the disk budget. Rows are committed in large groups (COMMIT_ROWS, or whenever the owner
 * calls `commit`; DuckDB syncs its WAL or the file on commit), so a killed process loses only
 * what was appended after the last commit; `checkpoint` folds the WAL into the file, which keeps
 * the WAL short and snapshot copies for readers small.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { type DuckDBAppender, type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import type { RecordBatch } from '../codec/record-batch.ts';
import { V2, V2_RECORD_BYTES } from '../codec/v2-layout.ts';
import { StoreError } from '../errors.ts';
import { CHUNK_ROWS, FlowChunkWriter } from './flow-chunk.ts';
import {
  createTableSql,
  MACRO_SQL,
  META_TABLE,
  MIGRATABLE_SCHEMA_VERSIONS,
  migrationSql,
  PARTITION_MS,
  partitionName,
  partitionStartMs,
  SCHEMA_VERSION,
  TEMPLATE_TABLE,
  viewSql,
} from './schema.ts';
import { describeOpenError } from './store-errors.ts';

const NS_PER_PARTITION = PARTITION_MS * 1e6;
const TWO_POW_32 = 2 ** 32;

/**
 * Rows appended before they are committed without waiting for `commit()`. DuckDB writes a
 * commit this large straight into the database file, compressed, instead of logging it in the
 * WAL and writing it again at the checkpoint (a row group is 122 880 rows): committing every
 * eviction batch instead made appending ~4× slower.
 */
export const COMMIT_ROWS = 131_072;

/** DuckDB settings of the writer: checkpoints are flowtap's to schedule, not the WAL size's. */
const WRITER_OPTIONS = { checkpoint_threshold: '1GB' };

interface PartitionAppender {
  appender: DuckDBAppender;
  writer: FlowChunkWriter;
}

/** A flow store open for writing. Operations run one at a time, in call order. */
export class FlowStore {
  readonly #instance: DuckDBInstance;
  readonly #connection: DuckDBConnection;
  readonly #appenders = new Map<string, PartitionAppender>();
  #partitions: string[] = [];
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  #uncommittedRows = 0;

  private constructor(
    /** The database file. */
    readonly file: string,
    instance: DuckDBInstance,
    connection: DuckDBConnection,
  ) {
    this.#instance = instance;
    this.#connection = connection;
  }

  /** Opens (creating it and its directory when missing) the store at `file`; StoreError when it cannot. */
  static async open(file: string): Promise<FlowStore> {
    let instance: DuckDBInstance;
    try {
      mkdirSync(dirname(file), { recursive: true });
      instance = await DuckDBInstance.create(file, WRITER_OPTIONS);
    } catch (err) {
      throw describeOpenError(file, err);
    }
    const connection = await instance.connect();
    const store = new FlowStore(file, instance, connection);
    try {
      await store.#prepare();
    } catch (err) {
      store.#closeNow();
      throw err instanceof StoreError ? err : describeOpenError(file, err);
    }
    return store;
  }

  async #prepare(): Promise<void> {
    const c = this.#connection;
    await c.run(`CREATE TABLE IF NOT EXISTS ${META_TABLE} (key VARCHAR PRIMARY KEY, value VARCHAR)`);
    const found = await c.runAndReadAll(`SELECT value FROM ${META_TABLE} WHERE key = 'schema_version'`);
    const version = found.getRows()[0]?.[0];
    const migrate = typeof version === 'string' && MIGRATABLE_SCHEMA_VERSIONS.includes(version);
    if (version === undefined) {
      await c.run(`INSERT INTO ${META_TABLE} VALUES ('schema_version', '${SCHEMA_VERSION}')`);
    } else if (version !== SCHEMA_VERSION && !migrate) {
      throw new StoreError(
        this.file,
        `${this.file} holds flowtap store schema ${String(version)}, this flowtap writes ${SCHEMA_VERSION}; ` +
          'move the file away or set STORE_PATH to another directory',
      );
    }
    await c.run(createTableSql(TEMPLATE_TABLE));
    for (const sql of MACRO_SQL) await c.run(sql);
    this.#partitions = await listPartitions(c);
    if (migrate) await this.#migrate(String(version));
    await this.#refreshView();
  }

  /**
   * Brings a store of schema `fromVersion` to the current one in one transaction: the new columns
   * are added to every partition (and the template) with their defaults, so old rows read as
   * untagged, unbidirectional flows of an unknown agent without measured TCP health, and nothing
   * is rewritten.
   */
  async #migrate(fromVersion: string): Promise<void> {
    const c = this.#connection;
    await c.run('BEGIN TRANSACTION');
    try {
      for (const table of [TEMPLATE_TABLE, ...this.#partitions]) {
        for (const sql of migrationSql(table, fromVersion)) await c.run(sql);
      }
      await c.run(`UPDATE ${META_TABLE} SET value = '${SCHEMA_VERSION}' WHERE key = 'schema_version'`);
      await c.run('COMMIT');
    } catch (err) {
      await c.run('ROLLBACK');
      throw err;
    }
  }

  /** Runs `operation` after every operation called before it. */
  #exclusive<T>(operation: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(() => {
      if (this.#closed) throw new StoreError(this.file, `the flow store ${this.file} is closed`);
      return operation();
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Partition names, oldest first. */
  get partitions(): readonly string[] {
    return this.#partitions;
  }

  /**
   * Appends every row of `batch` to the partition of its last packet's day; commits once
   * COMMIT_ROWS are waiting. Rows are visible to readers, and safe from a crash, once committed.
   */
  append(batch: RecordBatch): Promise<void> {
    return this.#exclusive(async () => {
      let from = 0;
      while (from < batch.count) {
        const day = dayOfRow(batch, from);
        let to = from + 1;
        while (to < batch.count && to - from < CHUNK_ROWS && dayOfRow(batch, to) === day) to++;
        const target = await this.#appenderFor(partitionName(day * PARTITION_MS));
        target.writer.append(target.appender, batch, from, to);
        from = to;
      }
      this.#uncommittedRows += batch.count;
      if (this.#uncommittedRows >= COMMIT_ROWS) this.#commit();
    });
  }

  /** Commits every row appended so far. */
  commit(): Promise<void> {
    return this.#exclusive(async () => this.#commit());
  }

  #commit(): void {
    for (const open of this.#appenders.values()) open.appender.flushSync();
    this.#uncommittedRows = 0;
  }

  async #appenderFor(name: string): Promise<PartitionAppender> {
    const known = this.#appenders.get(name);
    if (known) return known;
    if (!this.#partitions.includes(name)) {
      await this.#connection.run(createTableSql(name));
      this.#partitions = [...this.#partitions, name].sort();
      await this.#refreshView();
    }
    // A day boundary was crossed: yesterday's appender is not needed any more (closing commits).
    for (const [other, open] of this.#appenders) {
      open.appender.closeSync();
      this.#appenders.delete(other);
    }
    const appender = await this.#connection.createAppender(name);
    const created = { appender, writer: new FlowChunkWriter(appender) };
    this.#appenders.set(name, created);
    return created;
  }

  async #refreshView(): Promise<void> {
    await this.#connection.run(viewSql([TEMPLATE_TABLE, ...this.#partitions]));
  }

  /**
   * Runs `query` on a connection of its own to this store, between appends: it sees every
   * committed row. This is how the writing process reads its own store: DuckDB's file lock does
   * not stop a second open from the same process, and nothing would keep such a reader's view of
   * the file consistent with this writer's checkpoints.
   */
  read<T>(query: (connection: DuckDBConnection) => Promise<T>): Promise<T> {
    return this.#exclusive(async () => {
      const connection = await this.#instance.connect();
      try {
        return await query(connection);
      } finally {
        connection.closeSync();
      }
    });
  }

  /** Drops every partition that ended before `cutoffMs`; returns their names. */
  dropPartitionsBefore(cutoffMs: number): Promise<string[]> {
    return this.#exclusive(() =>
      this.#drop(this.#partitions.filter((p) => (partitionStartMs(p) ?? 0) + PARTITION_MS <= cutoffMs)),
    );
  }

  async #drop(names: readonly string[]): Promise<string[]> {
    if (names.length === 0) return [];
    for (const name of names) {
      this.#appenders.get(name)?.appender.closeSync();
      this.#appenders.delete(name);
    }
    this.#partitions = this.#partitions.filter((p) => !names.includes(p));
    await this.#refreshView();
    for (const name of names) await this.#connection.run(`DROP TABLE IF EXISTS ${name}`);
    await this.#connection.run('CHECKPOINT');
    return [...names];
  }

  /** Bytes the database uses: its blocks in use plus its WAL. */
  usedBytes(): Promise<number> {
    return this.#exclusive(() => this.#usedBytes());
  }

  async #usedBytes(): Promise<number> {
    const reader = await this.#connection.runAndReadAll(
      'SELECT used_blocks * block_size AS used, wal_size FROM pragma_database_size()',
    );
    const [used, wal] = reader.getRows()[0] ?? [0, '0 bytes'];
    return Number(used) + parseSizeText(String(wal));
  }

  /**
   * Drops the oldest partitions until the store uses at most `maxBytes`, keeping the newest one;
   * when that one alone is over budget, its older half of rows is deleted instead. Returns the
   * names of the dropped partitions.
   */
  shrinkTo(maxBytes: number): Promise<string[]> {
    return this.#exclusive(async () => {
      const dropped: string[] = [];
      while ((await this.#usedBytes()) > maxBytes) {
        if (this.#partitions.length > 1) {
          dropped.push(...(await this.#drop([this.#partitions[0]])));
          continue;
        }
        const newest = this.#partitions[0];
        if (newest === undefined) break;
        const before = await this.#usedBytes();
        await this.#connection.run(
          `DELETE FROM ${newest} WHERE time_end < (SELECT min(time_end) + (max(time_end) - min(time_end)) / 2 FROM ${newest})`,
        );
        await this.#connection.run('CHECKPOINT');
        if ((await this.#usedBytes()) >= before) break;
      }
      return dropped;
    });
  }

  /** Folds the WAL into the database file. */
  checkpoint(): Promise<void> {
    return this.#exclusive(async () => {
      this.#commit();
      await this.#connection.run('CHECKPOINT');
    });
  }

  /** Commits what was appended, checkpoints and closes the file. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#queue;
    if (this.#closed) return;
    try {
      for (const open of this.#appenders.values()) open.appender.closeSync();
      this.#appenders.clear();
      await this.#connection.run('CHECKPOINT');
    } finally {
      this.#closeNow();
    }
  }

  #closeNow(): void {
    this.#closed = true;
    this.#connection.closeSync();
    this.#instance.closeSync();
  }
}

/** UTC day number (since the epoch) of row `i`'s last packet. */
function dayOfRow(batch: RecordBatch, i: number): number {
  const o = i * V2_RECORD_BYTES + V2.LAST_SEEN_NS;
  const ns = batch.bytes.readUInt32LE(o) + batch.bytes.readUInt32LE(o + 4) * TWO_POW_32;
  return Math.floor(ns / NS_PER_PARTITION);
}

async function listPartitions(c: DuckDBConnection): Promise<string[]> {
  const reader = await c.runAndReadAll(
    "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' ORDER BY table_name",
  );
  return reader
    .getRows()
    .map((row) => String(row[0]))
    .filter((name) => partitionStartMs(name) !== undefined);
}

const SIZE_UNITS: Record<string, number> = {
  bytes: 1,
  KiB: 2 ** 10,
  MiB: 2 ** 20,
  GiB: 2 ** 30,
  TiB: 2 ** 40,
};

/** `12.5 MiB` (DuckDB's `wal_size` text) as bytes. */
function parseSizeText(text: string): number {
  const m = /^([\d.]+)\s*(\w+)$/.exec(text.trim());
  if (!m) return 0;
  return Number(m[1]) * (SIZE_UNITS[m[2]] ?? 1);
}
