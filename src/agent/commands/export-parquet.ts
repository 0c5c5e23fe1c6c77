/**
 * `flowtap export-parquet [--since ...] OUT.parquet`: the flows of a time window of the store as
 * one Parquet file (zstd), with every column of the `flows` view, for pandas, Spark or ClickHouse.
 */
import type { Command } from 'commander';
import { windowSql } from '../../store/questions.ts';
import { TIME_POINT_ACCEPTED } from '../time-point.ts';
import { readStoreFile, readTimeWindow, type StoreReadFlags } from './query.ts';

/** Registers `flowtap export-parquet`. */
export function registerExportParquetCommand(program: Command): void {
  program
    .command('export-parquet')
    .description('write the flows of the store (or of a time window) to a Parquet file')
    .argument('<out>', 'the Parquet file to write (replaced if it exists)')
    .option('--since <time>', `flows that ended at or after this: ${TIME_POINT_ACCEPTED}`)
    .option('--until <time>', 'flows that ended before this (same forms as --since)')
    .option('--store-path <path>', "directory or .duckdb file of the store [STORE_PATH; the agent's default]")
    .action(async (out: string, flags: StoreReadFlags) => {
      const window = readTimeWindow(flags);
      const file = readStoreFile(flags);
      const { openStoreReader } = await import('../../store/store-reader.ts');
      const { asQueryError } = await import('../../store/run-query.ts');
      const reader = await openStoreReader(file);
      try {
        const target = out.replaceAll("'", "''");
        const result = await reader.connection
          .run(`COPY (${windowSql(window)}) TO '${target}' (FORMAT parquet, COMPRESSION zstd)`)
          .catch((err: unknown) => {
            throw asQueryError(file, err);
          });
        process.stderr.write(`flowtap export-parquet: ${result.rowsChanged} flows written to ${out}\n`);
      } finally {
        reader.close();
      }
    });
}
