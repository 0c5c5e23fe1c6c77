/**
 * Query results as people and programs read them: an aligned table on a terminal, JSON lines or
 * CSV when piped. Values are converted once: whole numbers as numbers (text beyond 2^53), times
 * as RFC 3339 UTC text, BLOBs as hex.
 */
import type { Writable } from 'node:stream';
import { DuckDBBlobValue, type DuckDBValue } from '@duckdb/node-api';
import { humanBytes } from '../model/names.ts';
import type { ResultFormat } from './questions.ts';

/** A result value in plain JS. */
export type PlainValue = string | number | boolean | null;

const TIMESTAMP_TEXT = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?)$/;

/** `value` as a plain JS value. */
export function plainValue(value: DuckDBValue): PlainValue {
  if (
    value === null ||
    typeof value === 'string' ||
    typeof value === 'number' ||
    typeof value === 'boolean'
  ) {
    return value;
  }
  if (typeof value === 'bigint') {
    return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER)
      ? Number(value)
      : value.toString();
  }
  if (value instanceof DuckDBBlobValue) return Buffer.from(value.bytes).toString('hex');
  const text = String(value);
  const time = TIMESTAMP_TEXT.exec(text);
  return time ? `${time[1]}T${time[2]}Z` : text;
}

/** Writes rows as they come, in one format; `end()` finishes (the table is written then). */
export class ResultWriter {
  readonly #rows: PlainValue[][] = [];
  #wroteHeader = false;
  /** Rows written so far. */
  count = 0;

  constructor(
    private readonly out: Writable,
    private readonly format: ResultFormat,
    private readonly columns: readonly string[],
  ) {}

  /** Adds rows of DuckDB values. */
  write(rows: readonly (readonly DuckDBValue[])[]): void {
    let text = '';
    if (this.format === 'csv' && !this.#wroteHeader) {
      text += `${this.columns.map(csvCell).join(',')}\n`;
      this.#wroteHeader = true;
    }
    for (const row of rows) {
      const values = row.map(plainValue);
      this.count++;
      if (this.format === 'table') this.#rows.push(values);
      else if (this.format === 'csv') text += `${values.map(csvCell).join(',')}\n`;
      else text += `${JSON.stringify(Object.fromEntries(this.columns.map((c, i) => [c, values[i]])))}\n`;
    }
    if (text !== '') this.out.write(text);
  }

  /** Writes what is held back (the table) and, for an empty table, says there were no rows. */
  end(): void {
    if (this.format === 'csv' && !this.#wroteHeader)
      this.out.write(`${this.columns.map(csvCell).join(',')}\n`);
    if (this.format !== 'table') return;
    if (this.#rows.length === 0) {
      this.out.write('(no rows)\n');
      return;
    }
    this.out.write(tableText(this.columns, this.#rows));
  }
}

function csvCell(value: PlainValue): string {
  if (value === null) return '';
  const text = String(value);
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** Columns named `bytes` are shown in KiB/MiB/GiB at a terminal. */
function tableCell(column: string, value: PlainValue): string {
  if (value === null) return '';
  if (column === 'bytes' && typeof value === 'number') return humanBytes(value);
  return String(value);
}

function tableText(columns: readonly string[], rows: readonly PlainValue[][]): string {
  const cells = rows.map((row) => row.map((v, i) => tableCell(columns[i], v)));
  const header = columns.map((c) => c.toUpperCase());
  const numeric = columns.map((_, i) => rows.every((row) => row[i] === null || typeof row[i] === 'number'));
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((row) => row[i].length)));
  const line = (row: readonly string[]) =>
    row
      .map((cell, i) => (numeric[i] ? cell.padStart(widths[i]) : cell.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return `${[header, ...cells].map(line).join('\n')}\n`;
}
