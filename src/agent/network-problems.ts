/**
 * Network failures every collector connection meets in normal life (refused, reset, unreachable,
 * timed out, name not found, gRPC UNAVAILABLE): logged as one line naming the target and what to
 * do, with the stack only at debug level; so are flowtap's own errors (their message says what
 * happened). Anything else keeps its stack: it may be a bug.
 */
import { FlowtapError } from '../errors.ts';
import type { Logger } from './logger.ts';

/** What each expected errno means to people. */
const ERRNO_PROBLEMS: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ECONNABORTED: 'connection aborted',
  EPIPE: 'connection closed by the peer',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'timed out',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name lookup failed for now',
};
/** gRPC status codes (numeric) of a collector that cannot be reached or answered too late. */
const GRPC_PROBLEMS: Readonly<Record<number, string>> = { 4: 'deadline exceeded', 14: 'unavailable' };
/** Causes followed at most: enough for a library's wrapper around a socket error. */
const MAX_CAUSE_DEPTH = 4;

/** The expected network problem `err` (or one of its causes) is, in words; undefined when it is none. */
export function expectedNetworkProblem(err: unknown): string | undefined {
  let at: unknown = err;
  for (let depth = 0; depth <= MAX_CAUSE_DEPTH && at !== null && typeof at === 'object'; depth++) {
    const e = at as { code?: unknown; errno?: unknown; name?: unknown; cause?: unknown; message?: unknown };
    if (typeof e.code === 'string' && ERRNO_PROBLEMS[e.code]) return ERRNO_PROBLEMS[e.code];
    if (typeof e.code === 'number' && GRPC_PROBLEMS[e.code] && 'details' in e) return GRPC_PROBLEMS[e.code];
    if (e.name === 'KafkaJSConnectionError' || e.name === 'KafkaJSNumberOfRetriesExceeded') {
      return 'brokers unreachable';
    }
    at = e.cause;
  }
  return undefined;
}

/**
 * Logs a failure to reach `target` (`host:port`, or '' when the caller does not know it) while
 * doing `what`, followed by `todo` (what the user can do):
 * one warning line for an expected network problem (its stack at debug), a warning with the
 * whole error otherwise.
 */
export function warnNetworkFailure(
  logger: Logger,
  err: unknown,
  what: string,
  target: string,
  todo: string,
): void {
  // flowtap's own errors say what happened in their message: as expected as a refused connection.
  const problem = expectedNetworkProblem(err) ?? (err instanceof FlowtapError ? err.message : undefined);
  if (problem === undefined) {
    logger.warn({ err, target }, `${what}: ${todo}`);
    return;
  }
  logger.warn({ target }, `${what}: ${problem}${target ? ` at ${target}` : ''}; ${todo}`);
  logger.debug({ err, target }, `${what}: the error in full`);
}
