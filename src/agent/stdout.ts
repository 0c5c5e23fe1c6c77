/**
 * Standard output as flowtap's commands write flows to it, and what happens when its reader goes
 * away.
 *
 * Node writes `process.stdout` synchronously when it is a file or a pipe, so a reader that stops
 * reading (a paused pager) would stall the whole process: timers, kernel drains, signals.
 * {@link flowStdout} writes descriptor 1 from libuv's thread pool instead: a slow reader only
 * fills the exporter's queue, which holds the pipeline back, and the agent stays responsive.
 *
 * When the reader is gone for good (`flowtap read big.pcap | head -1`), a write fails with EPIPE
 * and the command ends quietly, as other Unix tools do: by default the process exits with
 * {@link STDOUT_CLOSED_EXIT_CODE} at once; a command with something to release (the live agent)
 * installs its own way to stop with {@link onStdoutClosed}.
 */
import { createWriteStream, type WriteStream } from 'node:fs';

/** Exit status when the reader of stdout went away: success, like `yes | head -1` without pipefail. */
export const STDOUT_CLOSED_EXIT_CODE = 0;

const STDOUT_FD = 1;

let stream: WriteStream | undefined;
let closedAction: () => void = exitQuietly;
let closed = false;

function exitQuietly(): void {
  process.exit(STDOUT_CLOSED_EXIT_CODE);
}

/** True when `err` says the reader of a pipe or socket has gone away. */
export function isReaderGone(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'EPIPE';
}

/** Runs the closed-stdout action once, whichever stream noticed first. */
export function stdoutClosed(): void {
  if (closed) return;
  closed = true;
  closedAction();
}

/**
 * Sets what happens when the reader of stdout goes away (instead of exiting at once); returns the
 * function that restores the default.
 */
export function onStdoutClosed(action: () => void): () => void {
  closedAction = action;
  return () => {
    closedAction = exitQuietly;
  };
}

/**
 * Descriptor 1 as an asynchronous stream, created on first use and never closed (the process
 * owns the descriptor). Its other errors (a full disk) fail the writes, and the exporter counts them.
 */
export function flowStdout(): WriteStream {
  if (stream) return stream;
  stream = createWriteStream('', { fd: STDOUT_FD, autoClose: false });
  stream.on('error', (err) => {
    if (isReaderGone(err)) stdoutClosed();
  });
  return stream;
}

/**
 * Makes `process.stdout` (help texts, `flowtap collect`) end the command quietly when its reader
 * goes away, instead of an unhandled 'error' event; other write errors are reported, exit 1.
 */
export function watchProcessStdout(): void {
  process.stdout.on('error', (err) => {
    if (isReaderGone(err)) {
      stdoutClosed();
      return;
    }
    process.stderr.write(`flowtap: writing to stdout failed: ${err.message}\n`);
    process.exit(1);
  });
}
