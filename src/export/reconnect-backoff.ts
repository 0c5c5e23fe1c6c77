/**
 * Exponential backoff with jitter for exporters that reconnect (ipfix+tcp) or resend (grpc) while
 * their collector is down. Waits run on unref()'d timers so a retrying exporter never keeps the
 * process alive, and they end early when the exporter is stopped.
 */

/** First delay after a failure. */
export const INITIAL_BACKOFF_MS = 100;
/** Delays stop growing here, so a collector back after a long outage is found within this time. */
export const MAX_BACKOFF_MS = 10_000;
/** Each failure multiplies the delay by this. */
const BACKOFF_MULTIPLIER = 2;
/** Each delay is randomly moved by up to this fraction either way, so agents restarted together spread out. */
const BACKOFF_JITTER = 0.2;

/**
 * Failed attempts an exporter retried after a backoff, by reason: `tls` for a failed TLS
 * handshake, `transport` for any other (collector unreachable, call cut or timed out).
 */
export interface RetryCounts {
  tls: number;
  transport: number;
}

/** An exporter that counts its retried attempts (the grpc exporter); /metrics exposes them. */
export interface RetryingExporter {
  readonly retries: Readonly<RetryCounts>;
}

/** Whether `exporter` counts its retried attempts. */
export function isRetryingExporter(exporter: object): exporter is RetryingExporter {
  const retries = (exporter as Partial<RetryingExporter>).retries;
  return typeof retries === 'object' && retries !== null;
}

/** Settings of a {@link ReconnectBackoff}. */
export interface BackoffOptions {
  /** First delay (default {@link INITIAL_BACKOFF_MS}). */
  initialBackoffMs?: number;
  /** Largest delay (default {@link MAX_BACKOFF_MS}). */
  maxBackoffMs?: number;
  /** Uniform random number in [0, 1); injectable so tests can pin the jitter. */
  random?: () => number;
}

/** Delays between attempts: initial, doubling up to the maximum, each with ±20 % jitter. */
export class ReconnectBackoff {
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #random: () => number;
  #nextMs: number;

  constructor(options: BackoffOptions = {}) {
    this.#initialMs = options.initialBackoffMs ?? INITIAL_BACKOFF_MS;
    this.#maxMs = Math.max(options.maxBackoffMs ?? MAX_BACKOFF_MS, this.#initialMs);
    this.#random = options.random ?? Math.random;
    this.#nextMs = this.#initialMs;
  }

  /** The delay before the next attempt; each call grows the one after it. */
  nextDelayMs(): number {
    const base = this.#nextMs;
    this.#nextMs = Math.min(base * BACKOFF_MULTIPLIER, this.#maxMs);
    const jitter = 1 + BACKOFF_JITTER * (2 * this.#random() - 1);
    return Math.round(base * jitter);
  }

  /** Starts over from the initial delay (after a success). */
  reset(): void {
    this.#nextMs = this.#initialMs;
  }
}

/**
 * Resolves after `ms` on an unref()'d timer, or rejects with the signal's reason as soon as
 * `signal` aborts (the exporter is stopping).
 */
export function waitUnref(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    timer.unref();
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
