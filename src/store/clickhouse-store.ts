/**
 * Flows in ClickHouse: `clickhouse://[user[:password]@]host[:port]/database` parsed once, the one
 * flows table (MergeTree, a partition per UTC day of the last packet so retention drops whole
 * partitions, ordered by minute and source address for the time windows and top lists every
 * question has), RowBinary inserts, and queries answered as plain rows.
 *
 * The SQL is what ClickHouse 18.16 (Debian's) and current releases both accept; @clickhouse/client
 * talks to 18.16 unchanged (its HTTP requests carry no setting the old server refuses: checked by
 * the tests, which run against Debian's server).
 */
import { Readable } from 'node:stream';
import { type ClickHouseClient, ClickHouseLogLevel, createClient } from '@clickhouse/client';
import { ConfigError, StoreError } from '../errors.ts';
import { ROW_BINARY_COLUMNS } from './clickhouse-rows.ts';
import { STORE_COLUMNS } from './schema.ts';
import { clickhouseDialect, type SqlDialect } from './sql-dialect.ts';

/** Scheme of a ClickHouse store URL. */
export const CLICKHOUSE_SCHEME = 'clickhouse:';
/** ClickHouse's HTTP port. */
export const DEFAULT_CLICKHOUSE_HTTP_PORT = 8123;
/** The table flows are stored in, inside the URL's database. */
export const CLICKHOUSE_FLOWS_TABLE = 'flows';
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Nanoseconds in a minute: the sort key groups rows by minute of `time_end`. */
const NS_PER_MINUTE = 60_000_000_000n;

/** Where a ClickHouse store is. */
export interface ClickHouseTarget {
  /** `http://host:port` of the HTTP interface. */
  readonly httpUrl: string;
  readonly database: string;
  readonly username: string;
  readonly password: string;
  /** The URL as given with any password hidden, for messages. */
  readonly display: string;
}

/** True when `text` names a ClickHouse store rather than a DuckDB path. */
export function isClickHouseUrl(text: string): boolean {
  return text.toLowerCase().startsWith(`${CLICKHOUSE_SCHEME}//`);
}

/** Parses `clickhouse://[user[:password]@]host[:port]/database`; `setting` names the flag in errors. */
export function parseClickHouseUrl(setting: string, text: string): ClickHouseTarget {
  const expected = 'clickhouse://[user[:password]@]host[:port]/database';
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ConfigError(setting, text, expected);
  }
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (url.protocol !== CLICKHOUSE_SCHEME || url.hostname === '' || !IDENTIFIER.test(database)) {
    throw new ConfigError(setting, text, `${expected} (database: letters, digits and _)`);
  }
  const port = url.port === '' ? DEFAULT_CLICKHOUSE_HTTP_PORT : Number(url.port);
  const username = decodeURIComponent(url.username) || 'default';
  const password = decodeURIComponent(url.password);
  const shown = new URL(text);
  if (shown.password !== '') shown.password = '***';
  return {
    httpUrl: `http://${url.hostname}:${port}`,
    database,
    username,
    password,
    display: shown.toString(),
  };
}

/** The flows table's qualified name. */
export function flowsTableOf(target: ClickHouseTarget): string {
  return `${target.database}.${CLICKHOUSE_FLOWS_TABLE}`;
}

/** The dialect questions use against `target`. */
export function dialectOf(target: ClickHouseTarget): SqlDialect {
  return clickhouseDialect(flowsTableOf(target));
}

/** CREATE TABLE of the flows table (columns from schema.ts). */
export function createFlowsTableSql(target: ClickHouseTarget): string {
  const columns = STORE_COLUMNS.map((c) => `${c.name} ${c.clickhouse}`).join(', ');
  return `CREATE TABLE IF NOT EXISTS ${flowsTableOf(target)} (${columns})
    ENGINE = MergeTree()
    PARTITION BY toYYYYMMDD(toDateTime(intDiv(time_end, 1000000000), 'UTC'))
    ORDER BY (intDiv(time_end, ${NS_PER_MINUTE}), src_ip_hi, src_ip_lo)`;
}

/** ALTER TABLE adding the stored columns not in `existing` (undefined when none is missing). */
export function addMissingColumnsSql(
  target: ClickHouseTarget,
  existing: ReadonlySet<string>,
): string | undefined {
  const missing = STORE_COLUMNS.filter((c) => !existing.has(c.name));
  if (missing.length === 0) return undefined;
  return `ALTER TABLE ${flowsTableOf(target)} ${missing.map((c) => `ADD COLUMN ${c.name} ${c.clickhouse}`).join(', ')}`;
}

/** Column names and rows of a query result, values as JSON gives them (64-bit integers as text). */
export interface ClickHouseResult {
  readonly columns: string[];
  readonly types: string[];
  readonly rows: unknown[][];
}

/** A connection (HTTP, pooled by the client) to one ClickHouse store. */
export class ClickHouseStore {
  readonly #client: ClickHouseClient;
  readonly #insertSql: string;
  #closed = false;

  constructor(readonly target: ClickHouseTarget) {
    this.#client = createClient({
      url: target.httpUrl,
      username: target.username,
      password: target.password,
      // Failures reach the user once, through the caller's errors and metrics, not per attempt.
      log: { level: ClickHouseLogLevel.OFF },
    });
    this.#insertSql = `INSERT INTO ${flowsTableOf(target)} (${ROW_BINARY_COLUMNS.join(', ')}) FORMAT RowBinary`;
  }

  /**
   * Creates the database and the flows table when missing, and adds the columns a table made by
   * an older flowtap lacks (their defaults are what old rows read: 0 and ''). ClickHouse 18.16 has
   * no ADD COLUMN IF NOT EXISTS, so the missing ones are found in system.columns.
   */
  async ensureSchema(): Promise<void> {
    await this.#command(`CREATE DATABASE IF NOT EXISTS ${this.target.database}`);
    await this.#command(createFlowsTableSql(this.target));
    const existing = await this.query(
      `SELECT name FROM system.columns WHERE database = '${this.target.database}' AND table = '${CLICKHOUSE_FLOWS_TABLE}'`,
    );
    const sql = addMissingColumnsSql(this.target, new Set(existing.rows.map((row) => String(row[0]))));
    if (sql !== undefined) await this.#command(sql);
  }

  /** Inserts one RowBinary body (clickhouse-rows.ts); resolves once ClickHouse has stored it. */
  async insertRowBinary(body: Buffer): Promise<void> {
    const result = await this.#wrap(() =>
      this.#client.exec({ query: this.#insertSql, values: Readable.from([body]) }),
    );
    // The reply body is empty; reading it to the end releases the socket to the pool.
    result.stream.resume();
    await new Promise<void>((resolve, reject) => {
      result.stream.once('end', resolve);
      result.stream.once('error', reject);
    });
  }

  /** Runs a SELECT and returns its result. */
  async query(sql: string): Promise<ClickHouseResult> {
    const result = await this.#wrap(() => this.#client.query({ query: sql, format: 'JSONCompact' }));
    const json = (await result.json()) as { meta: { name: string; type: string }[]; data: unknown[][] };
    return { columns: json.meta.map((m) => m.name), types: json.meta.map((m) => m.type), rows: json.data };
  }

  /** True when the server answers /ping. */
  async ping(): Promise<boolean> {
    return (await this.#client.ping()).success;
  }

  /** Closes the connections; idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#client.close();
  }

  async #command(sql: string): Promise<void> {
    await this.#wrap(() => this.#client.command({ query: sql }));
  }

  /** The client's failure as a StoreError naming the store and carrying ClickHouse's words. */
  async #wrap<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw new StoreError(
        this.target.display,
        `ClickHouse at ${this.target.display}: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
    }
  }
}
