/** One SQL statement run against ClickHouse, its rows written in the output forms DuckDB's are. */
import type { Writable } from 'node:stream';
import type { ClickHouseStore } from './clickhouse-store.ts';
import type { ResultFormat } from './questions.ts';
import { ResultWriter } from './result-format.ts';

/** ClickHouse integer types, which JSON output quotes when 64 bits wide. */
const INTEGER_TYPE = /^(Nullable\()?U?Int(8|16|32|64)\)?$/;

/**
 * Runs `sql` and writes its rows to `out` in `format`; returns the row count. Integers become
 * numbers as DuckDB's do (text beyond 2^53), so both engines print the same.
 */
export async function writeClickHouseResult(
  store: ClickHouseStore,
  sql: string,
  out: Writable,
  format: ResultFormat,
): Promise<number> {
  const result = await store.query(sql);
  const integer = result.types.map((t) => INTEGER_TYPE.test(t));
  const writer = new ResultWriter(out, format, result.columns);
  writer.write(
    result.rows.map((row) =>
      row.map((value, i) =>
        integer[i] && value !== null ? BigInt(value as string | number) : (value as string | null),
      ),
    ),
  );
  writer.end();
  return writer.count;
}
