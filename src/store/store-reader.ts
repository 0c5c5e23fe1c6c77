/**
 * The reader's side of the flow store. DuckDB lets one process hold a database file open for
 * writing and no other process open it at all, not even read-only (checked with DuckDB 1.5: the
 * second open fails with "Could not set lock on file"). So a reader first tries a read-only open
 * (a stopped agent, a copied file); when an agent holds the lock, it copies the file and its WAL
 * into a private snapshot and reads that. The copy is consistent when no checkpoint completed
 * while it was taken (the file's headers are unchanged before and after; DuckDB never overwrites
 * blocks the current header refers to), and is retried otherwise. The WAL is copied after the
 * file, so its entries are never older than the file's; a half-written last entry is discarded
 * by DuckDB's replay. The agent is never blocked.
 */
import {
  closeSync as closeFd,
  copyFileSync,
  existsSync,
  mkdtempSync,
  openSync,
  readSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { StoreError } from '../errors.ts';
import { FLOWS_VIEW } from './schema.ts';
import { describeOpenError } from './store-errors.ts';

/** Bytes at the start of a DuckDB file holding its main header and both database headers. */
const HEADER_BYTES = 3 * 4096;
/** Snapshot attempts before giving up (each fails only if the agent checkpointed meanwhile). */
const SNAPSHOT_ATTEMPTS = 5;

/**
 * Runs read-only queries against a flow store, on a connection lent for the call; how depends on
 * who holds the store (see StoreExporter.read).
 */
export type StoreQueries = <T>(query: (connection: DuckDBConnection) => Promise<T>) => Promise<T>;

/** Queries on the store `file` through {@link openStoreReader}, opened for each call. */
export function queriesOfFile(file: string): StoreQueries {
  return async (query) => {
    const reader = await openStoreReader(file);
    try {
      return await query(reader.connection);
    } finally {
      reader.close();
    }
  };
}

/** A read-only view of a flow store. */
export interface StoreReader {
  /** The connection to query. */
  readonly connection: DuckDBConnection;
  /** True when a running agent holds the store and a snapshot copy is being read. */
  readonly snapshot: boolean;
  /** Closes the database and removes the snapshot. */
  close(): void;
}

/** Opens the store `file` for reading, from a snapshot when an agent is writing it. */
export async function openStoreReader(file: string): Promise<StoreReader> {
  if (!existsSync(file)) {
    throw new StoreError(
      file,
      `no flow store at ${file}: flowtap run keeps one there by default; pass --store-path (or STORE_PATH) to read another`,
    );
  }
  try {
    return await openChecked(file, file, { access_mode: 'READ_ONLY' }, false);
  } catch (err) {
    if (!(err instanceof StoreError) || !/Could not set lock|Conflicting lock/i.test(String(err.cause)))
      throw err;
  }
  return openSnapshot(file);
}

async function openChecked(
  file: string,
  openPath: string,
  options: Record<string, string>,
  snapshot: boolean,
  cleanup: () => void = () => {},
): Promise<StoreReader> {
  let instance: DuckDBInstance;
  try {
    instance = await DuckDBInstance.create(openPath, options);
  } catch (err) {
    cleanup();
    throw describeOpenError(file, err);
  }
  const connection = await instance.connect();
  const close = () => {
    connection.closeSync();
    instance.closeSync();
    cleanup();
  };
  let views: number;
  try {
    const found = await connection.runAndReadAll(
      `SELECT count(*) FROM duckdb_views() WHERE view_name = '${FLOWS_VIEW}'`,
    );
    views = Number(found.getRows()[0]?.[0] ?? 0);
  } catch (err) {
    close();
    throw describeOpenError(file, err);
  }
  if (views === 0) {
    close();
    throw new StoreError(
      file,
      `${file} is a DuckDB database but not a flowtap flow store (it has no ${FLOWS_VIEW} view)`,
    );
  }
  return { connection, snapshot, close };
}

function readHeader(file: string): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, header, 0, HEADER_BYTES, 0);
  } finally {
    closeFd(fd);
  }
  return header;
}

async function openSnapshot(file: string): Promise<StoreReader> {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-snapshot-'));
  const copy = join(dir, 'flows.duckdb');
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  try {
    for (let attempt = 1; ; attempt++) {
      const before = readHeader(file);
      copyFileSync(file, copy);
      rmSync(`${copy}.wal`, { force: true });
      if (existsSync(`${file}.wal`)) copyFileSync(`${file}.wal`, `${copy}.wal`);
      if (before.equals(readHeader(file))) break;
      if (attempt === SNAPSHOT_ATTEMPTS) {
        throw new StoreError(
          file,
          `could not take a consistent copy of ${file} while the agent checkpoints it; try again`,
        );
      }
    }
  } catch (err) {
    cleanup();
    throw err instanceof StoreError ? err : describeOpenError(file, err);
  }
  // The copy is private: opened read-write so DuckDB may replay the WAL into it.
  return openChecked(file, copy, {}, true, cleanup);
}
