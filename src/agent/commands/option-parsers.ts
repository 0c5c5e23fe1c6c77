/**
 * Parsers of the file commands' own flags (decode, read), the filter expression of run and read, and the mapping of a file that cannot be
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

/** A commander option parser accepting a positive Go duration, returning milliseconds. */
export function positiveDurationOption(setting: string): (value: string) => number {
  return (value) => {
    const ms = parseDurationMs(value);
    if (ms === undefined || ms <= 0) {
      throw new ConfigError(setting, value, 'a positive Go duration such as 5s or 500ms');
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
