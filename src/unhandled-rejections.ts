/**
 * Errors that reached no caller: promise rejections nobody handled (kafkajs has known ones), and
 * failures of listeners that run inside loops nobody awaits (an exporter's result listener). They
 * must not end an agent that is counting traffic, nor pass unseen: each is counted by origin (the
 * package it was raised in, one label value per package, so the metric stays small) for
 * `flowtap_unhandled_rejections_total{origin}`, and the first one of each origin is logged as an
 * error without its stack; the stack's first frame is logged at debug.
 */

/** What the tracker logs through (a pino logger fits). */
export interface RejectionLogger {
  error(fields: object, message: string): void;
  debug(fields: object, message: string): void;
}

/** Origin of a rejection whose reason carries no stack (a string, an object). */
export const UNKNOWN_ORIGIN = 'unknown';
/** Origin of an error raised in Node.js's own modules only (a socket's ECONNRESET). */
export const NODE_ORIGIN = 'node';
/** Origin of an error raised in flowtap's own files. */
export const FLOWTAP_ORIGIN = 'flowtap';

const FRAME = /^\s*at (?:.*\()?(.+?):\d+:\d+\)?$/;
const PACKAGE_IN_NODE_MODULES = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(?!.*node_modules\/)/;

/** The first stack frame of `reason` outside Node.js's own modules, or its first frame, if any. */
export function firstStackFrame(reason: unknown): string | undefined {
  const stack = reason instanceof Error ? reason.stack : undefined;
  if (!stack) return undefined;
  let first: string | undefined;
  for (const line of stack.split('\n')) {
    const match = FRAME.exec(line);
    if (!match) continue;
    first ??= line.trim();
    if (!isNodeInternal(match[1])) return line.trim();
  }
  return first;
}

/**
 * Where `reason` was raised: the npm package of its first frame outside Node.js (`kafkajs`,
 * `@grpc/grpc-js`), `flowtap` for flowtap's own files, `node` when every frame is Node.js's own,
 * `unknown` without a stack.
 */
export function rejectionOrigin(reason: unknown): string {
  const frame = firstStackFrame(reason);
  if (frame === undefined) return UNKNOWN_ORIGIN;
  const file = FRAME.exec(frame)?.[1] ?? '';
  if (isNodeInternal(file)) return NODE_ORIGIN;
  return PACKAGE_IN_NODE_MODULES.exec(file)?.[1] ?? FLOWTAP_ORIGIN;
}

function isNodeInternal(file: string): boolean {
  return file.startsWith('node:') || !file.includes('/');
}

/** Counts and logs errors no caller handled; see the module comment. */
export class UnhandledRejections {
  readonly #counts = new Map<string, number>();
  #logger: RejectionLogger | undefined;

  /** Errors recorded so far, by origin. */
  get counts(): ReadonlyMap<string, number> {
    return this.#counts;
  }

  /** Logs through `logger` from now on (the command's logger, at its level). */
  useLogger(logger: RejectionLogger): void {
    this.#logger = logger;
  }

  /** Counts `reason` by origin; the first of its origin is logged. Never throws. */
  record(reason: unknown): void {
    const origin = rejectionOrigin(reason);
    const seen = this.#counts.get(origin) ?? 0;
    this.#counts.set(origin, seen + 1);
    if (seen > 0) return;
    const error = describe(reason);
    const message =
      `unhandled error from ${origin} (${error.errorName}: ${error.reason}); flowtap carries on, ` +
      `counting these in flowtap_unhandled_rejections_total{origin="${origin}"} without logging them again`;
    try {
      if (this.#logger) {
        this.#logger.error({ origin, ...error }, message);
        this.#logger.debug(
          { origin, frame: firstStackFrame(reason) },
          'first stack frame of the unhandled error',
        );
      } else {
        process.stderr.write(`flowtap: ${message}\n`);
      }
    } catch {
      // Logging itself failed (stderr closed): the count above still shows the error on /metrics.
    }
  }
}

/** Name, code and message of `reason`, never its stack. */
function describe(reason: unknown): { errorName: string; code?: string; reason: string } {
  if (reason instanceof Error) {
    const code = (reason as NodeJS.ErrnoException).code;
    return {
      errorName: reason.name,
      ...(code === undefined ? {} : { code: String(code) }),
      reason: reason.message,
    };
  }
  let text: string;
  try {
    text = String(reason);
  } catch {
    text = typeof reason;
  }
  return { errorName: typeof reason, reason: text };
}

/** The process's tracker: the CLI routes `unhandledRejection` here and `/metrics` reads it. */
export const unhandledRejections = new UnhandledRejections();
