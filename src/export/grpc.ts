/**
 * `grpc`: flows as `pbflow.Records` to `pbflow.Collector/Send`, wire-compatible with the
 * reference, so a collector built for it receives flowtap's flows unchanged. A batch is split
 * into messages of at most `maxMessageFlows` flows (GRPC_MESSAGE_MAX_FLOWS), each encoded by the
 * hand-written encoder straight from the v2 rows and sent in order, one at a time.
 *
 * Delivery is at-least-once per message. A message is resent, after an exponential backoff with
 * jitter on unref()'d timers, until the collector acknowledges it, for as long as the collector is
 * unreachable (UNAVAILABLE), cuts the call (CANCELLED) or does not answer in time
 * (DEADLINE_EXCEEDED); meanwhile later
 * batches wait in the bounded queue, and beyond it are dropped and counted. A collector that dies
 * after receiving a message but before replying receives that one message (at most
 * `maxMessageFlows` flows) again from the next collector on that address: the only duplicates.
 * Messages the collector rejects (INVALID_ARGUMENT, RESOURCE_EXHAUSTED, INTERNAL, ...) are not
 * resent; their batch fails, counted in `flowsFailed` (whole, even when earlier messages of it
 * were delivered).
 *
 * A TLS handshake that fails (no client certificate for a collector requiring one, an untrusted
 * collector certificate) is retried the same way, since either side may be fixed, and reported to
 * `onTransportError` as a TlsHandshakeError saying which setting fixes it.
 */
import {
  type CallOptions,
  type ChannelCredentials,
  Client,
  type ClientUnaryCall,
  credentials,
  Metadata,
  type ServiceError,
  status,
} from '@grpc/grpc-js';
import { splitBiflows } from '../account/biflow.ts';
import type { RecordBatch } from '../codec/record-batch.ts';
import { ExportError } from '../errors.ts';
import { QueuedExporter, type QueuedExporterOptions } from './exporter.ts';
import { COLLECTOR_SEND_PATH } from './grpc-collector.ts';
import { encodePbRecords } from './pbflow/encode.ts';
import {
  type BackoffOptions,
  INITIAL_BACKOFF_MS,
  MAX_BACKOFF_MS,
  ReconnectBackoff,
  type RetryCounts,
  waitUnref,
} from './reconnect-backoff.ts';
import { tlsHandshakeError } from './tls-handshake.ts';

/** Default flows per message (GRPC_MESSAGE_MAX_FLOWS), as the reference. */
export const DEFAULT_GRPC_MESSAGE_MAX_FLOWS = 10_000;
/** Default time the collector has to answer one message before it is resent. */
export const DEFAULT_SEND_TIMEOUT_MS = 10_000;

/**
 * Codes meaning the message may not have arrived or been handled, so it is resent. CANCELLED is
 * among them because the exporter's own cancel (on stop) is recognised before this set is
 * consulted: any other CANCELLED is a collector cutting the call as it shuts down.
 */
const RETRYABLE = new Set<number>([status.UNAVAILABLE, status.DEADLINE_EXCEEDED, status.CANCELLED]);

/** Settings of a {@link GrpcExporter}. */
export interface GrpcExporterOptions extends QueuedExporterOptions, BackoffOptions {
  /** Collector host (name or address). */
  host: string;
  /** Collector port. */
  port: number;
  /** Flows per message at most (default {@link DEFAULT_GRPC_MESSAGE_MAX_FLOWS}). */
  maxMessageFlows?: number;
  /** TLS (see clientCredentialsFromFiles in tls.ts); default plaintext. */
  credentials?: ChannelCredentials;
  /** Time the collector has to answer one message (default {@link DEFAULT_SEND_TIMEOUT_MS}). */
  sendTimeoutMs?: number;
  /** Called with every failed attempt that will be retried (for logs); a TlsHandshakeError for a failed handshake. */
  onTransportError?: (err: Error) => void;
}

const identity = (bytes: Buffer) => bytes;

/** Sends flows to a pbflow collector over gRPC. */
export class GrpcExporter extends QueuedExporter {
  readonly name = 'grpc';
  /** Messages acknowledged by the collector. */
  messagesSent = 0;
  /** Attempts that failed and were retried, by reason: a failed TLS handshake, or another transport failure. */
  readonly retries: RetryCounts = { tls: 0, transport: 0 };
  readonly #client: Client;
  /** The collector as `host:port`, for messages. */
  readonly #target: string;
  readonly #maxMessageFlows: number;
  readonly #sendTimeoutMs: number;
  readonly #backoff: ReconnectBackoff;
  readonly #onTransportError?: (err: Error) => void;
  readonly #stopping = new AbortController();
  #call: ClientUnaryCall | undefined;

  constructor(options: GrpcExporterOptions) {
    super(options);
    this.#maxMessageFlows = options.maxMessageFlows ?? DEFAULT_GRPC_MESSAGE_MAX_FLOWS;
    this.#sendTimeoutMs = options.sendTimeoutMs ?? DEFAULT_SEND_TIMEOUT_MS;
    this.#backoff = new ReconnectBackoff(options);
    this.#onTransportError = options.onTransportError;
    const host = options.host.includes(':') ? `[${options.host}]` : options.host;
    this.#target = `${host}:${options.port}`;
    this.#client = new Client(this.#target, options.credentials ?? credentials.createInsecure(), {
      // The channel's own reconnect backoff (grpc-js defaults: 1 s growing to 120 s) would keep
      // a restarted collector waiting long after our retries began; align it with ours.
      'grpc.initial_reconnect_backoff_ms': options.initialBackoffMs ?? INITIAL_BACKOFF_MS,
      'grpc.max_reconnect_backoff_ms': options.maxBackoffMs ?? MAX_BACKOFF_MS,
      // A 10 000-flow message is over the 4 MiB default of some collectors' peers; the collector bounds it.
      'grpc.max_send_message_length': -1,
    });
  }

  protected async send(evicted: RecordBatch): Promise<void> {
    // pbflow has no bidirectional form: a biflow goes out as its two directions.
    const batch = splitBiflows(evicted);
    for (let start = 0; start < batch.count; start += this.#maxMessageFlows) {
      const end = Math.min(start + this.#maxMessageFlows, batch.count);
      await this.#deliver(encodePbRecords(batch, start, end));
    }
  }

  protected override abort(): void {
    this.#stopping.abort(new ExportError(this.name, 'stopped before the collector acknowledged the batch'));
    this.#call?.cancel();
  }

  protected override async close(): Promise<void> {
    if (!this.#stopping.signal.aborted) this.#stopping.abort(new ExportError(this.name, 'stopped'));
    this.#client.close();
  }

  /** Sends one message until the collector acknowledges it, retrying what may not have arrived. */
  async #deliver(message: Buffer): Promise<void> {
    for (;;) {
      try {
        await this.#sendOnce(message);
        this.#backoff.reset();
        this.messagesSent++;
        return;
      } catch (err) {
        if (this.#stopping.signal.aborted) throw this.#stopping.signal.reason;
        const code = (err as ServiceError).code;
        if (!RETRYABLE.has(code)) {
          throw new ExportError(this.name, `the collector refused a message: ${(err as Error).message}`, {
            cause: err,
          });
        }
        const handshake = tlsHandshakeError(err as Error, this.#target);
        this.retries[handshake ? 'tls' : 'transport']++;
        this.#onTransportError?.(handshake ?? (err as Error));
        await waitUnref(this.#backoff.nextDelayMs(), this.#stopping.signal);
      }
    }
  }

  #sendOnce(message: Buffer): Promise<void> {
    const options: CallOptions = { deadline: Date.now() + this.#sendTimeoutMs };
    return new Promise((resolve, reject) => {
      this.#call = this.#client.makeUnaryRequest(
        COLLECTOR_SEND_PATH,
        identity,
        identity,
        message,
        new Metadata(),
        options,
        (err) => {
          this.#call = undefined;
          if (err) reject(err);
          else resolve();
        },
      );
    });
  }
}
