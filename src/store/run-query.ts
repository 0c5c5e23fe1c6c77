/** One SQL statement run against a store reader, its rows written as they stream in. */
import type { Writable } from 'node:stream';
import { StoreError } from '../errors.ts';
import type { ResultFormat } from './questions.ts';
import { ResultWriter } from './result-format.ts';
import type { StoreReader } from './store-reader.ts';

/** Runs `sql` and writes its rows to `out` in `format`; returns the row count. DuckDB's refusal becomes a StoreError with its words. */
export async function writeQueryResult(
  reader: StoreReader,
  file: string,
  sql: string,
  out: Writable,
  format: ResultFormat,
): Promise<number> {
  try {
    const result = await reader.connection.stream(sql);
    const writer = new ResultWriter(out, format, result.columnNames());
    for await (const rows of result.yieldRows()) writer.write(rows);
    writer.end();
    return writer.count;
  } catch (err) {
    throw asQueryError(file, err);
  }
}

/** DuckDB's error as a StoreError carrying its message unchanged. */
export function asQueryError(file: string, err: unknown): unknown {
  if (err instanceof StoreError) return err;
  return new StoreError(file, `query failed: ${err instanceof Error ? err.message : String(err)}`, {
    cause: err,
  });
}
