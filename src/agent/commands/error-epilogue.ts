/**
 * Text a command wants printed after the message of the error that ends it: `read` ends with its
 * summary (packets read, flows, skips) below the error, so the last line says what was done.
 */

const EPILOGUES = new WeakMap<object, string>();

/** Marks `err` to be followed by `text` (with its newline) when the CLI reports it; returns `err`. */
export function withEpilogue<E>(err: E, text: string): E {
  if (err !== null && typeof err === 'object') EPILOGUES.set(err, text);
  return err;
}

/** The text to print after `err`'s message; '' when there is none. */
export function epilogueOf(err: unknown): string {
  return err !== null && typeof err === 'object' ? (EPILOGUES.get(err) ?? '') : '';
}
