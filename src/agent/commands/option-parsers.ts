/**
 * Parsers of the file commands' own flags (decode, read), the filter expression of run and read, and the mapping of a file that cannot be
 * opened to an InputError; the agent's settings go through src/agent/config.ts instead.
 */
import { type Command, Option } from 'commander';
import { ConfigError, InputError } from '../../errors.ts';
import { formatDurationMs, parseDurationMs } from '../duration.ts';

/** A commander option parser accepting a positive integer; anything else is a ConfigError naming `setting`. */
export function positiveIntOption(setting: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new ConfigError(setting, value, 'a positive integer');
    return n;
  };
}

const NS_PER_MS = 1_000_000;
/** 1 ns, less what parsing decimal text into milliseconds may lose. */
const SHORTEST_TIMEOUT_NS = 1 - 1e-9;

/**
 * A commander option parser accepting a Go duration of at least 1ns, returning milliseconds.
 * Record times are whole nanoseconds: a shorter timeout is a step no record clock can take.
 */
export function positiveDurationOption(setting: string): (value: string) => number {
  return (value) => {
    const ms = parseDurationMs(value);
    if (ms === undefined || !(ms * NS_PER_MS >= SHORTEST_TIMEOUT_NS)) {
      throw new ConfigError(
        setting,
        value,
        'a Go duration of at least 1ns (the finest step of a record time), such as 5s or 500ms',
      );
    }
    return ms;
  };
}

/**
 * A `--flags <duration>` option parsed by {@link positiveDurationOption} into milliseconds, whose
 * default `--help` shows as a duration (`5s`), not as milliseconds.
 */
export function durationOption(flags: string, description: string, defaultMs: number): Option {
  const setting = flags.split(' ')[0];
  return new Option(flags, description)
    .argParser(positiveDurationOption(setting))
    .default(defaultMs, formatDurationMs(defaultMs));
}

/** `err` as an InputError naming `file` when it is a failure to open or read it; otherwise `err` unchanged. */
export function asInputError(err: unknown, file: string): unknown {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR') {
    return new InputError(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  return err;
}

/** Joins the positional filter expression and `--filter`, refusing both at once. */
export function filterFlag(positional: readonly string[], flag: string | undefined): string | undefined {
  if (positional.length === 0) return flag;
  const expression = positional.join(' ');
  if (flag !== undefined) {
    throw new ConfigError(
      '--filter',
      flag,
      `either --filter or an expression after the options, not both (got '${expression}' too)`,
    );
  }
  return expression;
}

/**
 * Declares `--cache-max-flows` and `--cache-active-timeout` of the file commands (`decode`, `read`),
 * whose timeout runs on the times of `what` (records or packets).
 */
export function addFileCacheOptions<C extends Command>(command: C, what: string): C {
  command
    .option(
      '--cache-max-flows <n>',
      'flows cached before the cache is evicted',
      positiveIntOption('--cache-max-flows'),
      FILE_CACHE_MAX_FLOWS,
    )
    .addOption(
      durationOption(
        '--cache-active-timeout <duration>',
        `active timeout on the ${what}’ times (Go duration)`,
        FILE_CACHE_ACTIVE_TIMEOUT_MS,
      ),
    );
  return command;
}

/** Flows the file commands cache before evicting: files are read once, so a large cache costs little time. */
const FILE_CACHE_MAX_FLOWS = 100_000;
/** The reference's active timeout, on the file's own times. */
const FILE_CACHE_ACTIVE_TIMEOUT_MS = 5_000;
