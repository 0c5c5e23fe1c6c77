/**
 * `ipfix+tcp`: IPFIX messages on one TCP connection. Each connection is a new transport session:
 * the templates are sent first and sequence numbers restart at 0 (templates are not refreshed on
 * a timer, RFC 7011 keeps that for UDP). While the collector is unreachable the exporter
 * reconnects with exponential backoff and jitter on unref()'d timers and batches wait in the
 * bounded queue; beyond it they are dropped and counted.
 *
 * Delivery is at-most-once: a batch counts as sent when TCP has taken all its bytes. If the
 * connection breaks while a batch is being written, that batch fails (counted in `flowsFailed`)
 * and is not resent, and bytes TCP had accepted but not delivered before a break are lost.
 */
import { connect, type Socket } from 'node:net';
import type { RecordBatch } from '../../codec/record-batch.ts';
import { ExportError } from '../../errors.ts';
import { QueuedExporter, type QueuedExporterOptions } from '../exporter.ts';
import { type BackoffOptions, ReconnectBackoff, waitUnref } from '../reconnect-backoff.ts';
import { IpfixEncoder, type IpfixEncoderOptions } from './encoder.ts';
import { exportTimeS } from './udp.ts';

/** Default largest message over TCP: no MTU applies, so the 16-bit length field is the bound. */
export const DEFAULT_TCP_MAX_MESSAGE_BYTES = 65_535;

/** Settings of an {@link IpfixTcpExporter}. */
export interface IpfixTcpExporterOptions extends QueuedExporterOptions, IpfixEncoderOptions, BackoffOptions {
  /** Collector host (name or address). */
  host: string;
  /** Collector TCP port. */
  port: number;
  /** Called with every connection failure; the exporter retries after a backoff. */
  onTransportError?: (err: Error) => void;
}

/** Sends flows to an IPFIX collector over TCP, reconnecting when the connection is lost. */
export class IpfixTcpExporter extends QueuedExporter {
  readonly name = 'ipfix+tcp';
  /** The encoder; its `sequenceNumber` counts data records sent on the current connection. */
  readonly encoder: IpfixEncoder;
  /** Connections established so far (each one starts by sending the templates). */
  connections = 0;
  readonly #host: string;
  readonly #port: number;
  readonly #backoff: ReconnectBackoff;
  readonly #onTransportError?: (err: Error) => void;
  readonly #stopping = new AbortController();
  /** The connected socket, undefined while (re)connecting. */
  #socket: Socket | undefined;
  #waiters: { resolve: (socket: Socket) => void; reject: (err: unknown) => void }[] = [];

  constructor(options: IpfixTcpExporterOptions) {
    super(options);
    this.encoder = new IpfixEncoder({
      ...options,
      maxMessageBytes: options.maxMessageBytes ?? DEFAULT_TCP_MAX_MESSAGE_BYTES,
    });
    this.#host = options.host;
    this.#port = options.port;
    this.#backoff = new ReconnectBackoff(options);
    this.#onTransportError = options.onTransportError;
    this.#connect();
  }

  protected async send(batch: RecordBatch): Promise<void> {
    const socket = this.#socket ?? (await this.#connected());
    const { bytes } = this.encoder.encodeBatch(batch, exportTimeS());
    // The callback comes once TCP took every byte (so slow collectors hold the queue, which is
    // the backpressure) or with the error that broke the connection.
    await new Promise<void>((resolve, reject) => {
      socket.write(bytes, (err) => {
        if (!err) resolve();
        else
          reject(new ExportError(this.name, `connection lost while sending: ${err.message}`, { cause: err }));
      });
    });
  }

  protected override abort(): void {
    this.#shutDown();
    this.#socket?.destroy();
  }

  protected override async close(): Promise<void> {
    this.#shutDown();
    const socket = this.#socket;
    if (!socket || socket.destroyed) return;
    await new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      socket.end(() => socket.destroy());
    });
  }

  #shutDown(): void {
    if (this.#stopping.signal.aborted) return;
    this.#stopping.abort(new ExportError(this.name, 'stopped before the collector accepted a connection'));
    for (const waiter of this.#waiters.splice(0)) waiter.reject(this.#stopping.signal.reason);
  }

  #connected(): Promise<Socket> {
    if (this.#stopping.signal.aborted) return Promise.reject(this.#stopping.signal.reason);
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  #connect(): void {
    const socket = connect({ host: this.#host, port: this.#port });
    // The exporter never keeps the process alive on its own: the agent decides when to stop.
    socket.unref();
    socket.setNoDelay(true);
    socket.on('connect', () => {
      if (this.#stopping.signal.aborted) {
        socket.destroy();
        return;
      }
      this.connections++;
      this.#backoff.reset();
      this.encoder.resetSequence();
      // The first bytes of every session; writes are ordered, so they precede any data.
      for (const message of this.encoder.templateMessages(exportTimeS())) socket.write(message);
      this.#socket = socket;
      for (const waiter of this.#waiters.splice(0)) waiter.resolve(socket);
    });
    socket.on('error', (err) => this.#onTransportError?.(err));
    // The collector sends nothing in IPFIX; reading keeps the socket flowing so its FIN is seen.
    socket.on('data', () => {});
    socket.on('close', () => {
      if (this.#socket === socket) this.#socket = undefined;
      if (this.#stopping.signal.aborted) return;
      waitUnref(this.#backoff.nextDelayMs(), this.#stopping.signal).then(
        () => this.#connect(),
        () => {}, // stopped while waiting: nothing to reconnect
      );
    });
  }
}
