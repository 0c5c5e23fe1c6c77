/** Every `flowtap` subcommand, registered on the program in the order `--help` lists them. */
import type { Command } from 'commander';
import { registerCollectCommand } from './collect.ts';
import { registerCompletionCommand } from './completion.ts';
import { registerDecodeCommand } from './decode.ts';
import { registerExportParquetCommand } from './export-parquet.ts';
import { registerQueryCommand } from './query.ts';
import { registerReadCommand } from './read.ts';
import { registerRunCommand } from './run.ts';

/** Adds all subcommands to `program`. */
export function registerCommands(program: Command): void {
  registerRunCommand(program);
  registerDecodeCommand(program);
  registerReadCommand(program);
  registerCollectCommand(program);
  registerQueryCommand(program);
  registerExportParquetCommand(program);
  registerCompletionCommand(program);
}
