/**
 * Parsers of the file commands' own flags (decode, read) and the mapping of a file that cannot be
 * opened to an InputError; the agent's settings go through src/agent/config.ts instead.
 */
import { ConfigError, InputError } from '../../errors.ts';
import { parseDurationMs } from '../duration.ts';

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

/** `err` as an InputError naming `file` when it is a failure to open or read it; otherwise `err` unchanged. */
export function asInputError(err: unknown, file: string): unknown {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR') {
    return new InputError(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  return err;
}
