/**
 * `ipfix+udp`: IPFIX messages as UDP datagrams, each within the path MTU. UDP gives no delivery
 * report, so a batch counts as sent once its datagrams are handed to the kernel; loss on the way
 * shows at the collector as gaps in the sequence numbers, which exist for exactly that. Because a
 * collector may start (or restart) at any time and UDP has no session, the templates are sent on
 * start and again every `templateRefreshMs` (RFC 7011 template management over UDP).
 */
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { RecordBatch } from '../../codec/record-batch.ts';
import { ExportError } from '../../errors.ts';
import { QueuedExporter, type QueuedExporterOptions } from '../exporter.ts';
import { IpfixEncoder, type IpfixEncoderOptions } from './encoder.ts';

/** Default interval between template resends over UDP. */
export const DEFAULT_TEMPLATE_REFRESH_MS = 60_000;

/** Settings of an {@link IpfixUdpExporter}. */
export interface IpfixUdpExporterOptions extends QueuedExporterOptions, IpfixEncoderOptions {
  /** Collector host (name or address). */
  host: string;
  /** Collector UDP port. */
  port: number;
  /** Interval between template resends (default {@link DEFAULT_TEMPLATE_REFRESH_MS}). */
  templateRefreshMs?: number;
}

/** Sends flows to an IPFIX collector over UDP. */
export class IpfixUdpExporter extends QueuedExporter {
  readonly name = 'ipfix+udp';
  /** The encoder; its `sequenceNumber` is the count of data records sent. */
  readonly encoder: IpfixEncoder;
  readonly #socket: Socket;
  readonly #host: string;
  readonly #port: number;
  readonly #refreshTimer: NodeJS.Timeout;
  /** Set by the socket's 'error' event; fails the next batch instead of crashing the process. */
  #socketError: Error | undefined;

  constructor(options: IpfixUdpExporterOptions) {
    super(options);
    this.encoder = new IpfixEncoder(options);
    this.#host = options.host;
    this.#port = options.port;
    this.#socket = createSocket(isIPv6(options.host) ? 'udp6' : 'udp4');
    this.#socket.on('error', (err) => {
      this.#socketError = err;
    });
    this.#socket.unref();
    this.#sendTemplates();
    this.#refreshTimer = setInterval(
      () => this.#sendTemplates(),
      options.templateRefreshMs ?? DEFAULT_TEMPLATE_REFRESH_MS,
    );
    this.#refreshTimer.unref();
  }

  protected async send(batch: RecordBatch): Promise<void> {
    if (this.#socketError) {
      const err = this.#socketError;
      this.#socketError = undefined;
      throw new ExportError(this.name, `socket error: ${err.message}`, { cause: err });
    }
    const { bytes, messageEnds } = this.encoder.encodeBatch(batch, exportTimeS());
    let failure: Error | undefined;
    const noteFailure = (err: Error) => {
      failure ??= err;
    };
    let start = 0;
    let last: Promise<void> = Promise.resolve();
    for (const end of messageEnds) {
      last = this.#sendDatagram(bytes.subarray(start, end)).catch(noteFailure);
      start = end;
    }
    // Datagrams of one socket complete in order, so when the last one is done all are.
    await last;
    if (failure) {
      throw new ExportError(this.name, `sending to ${this.#host}:${this.#port} failed: ${failure.message}`, {
        cause: failure,
      });
    }
  }

  protected override async close(): Promise<void> {
    clearInterval(this.#refreshTimer);
    await new Promise<void>((resolve) => this.#socket.close(() => resolve()));
  }

  #sendTemplates(): void {
    // A lost template message is repaired by the next refresh; the error, if any, is kept for
    // the next batch to report.
    for (const message of this.encoder.templateMessages(exportTimeS())) {
      this.#sendDatagram(message).catch((err: Error) => {
        this.#socketError = err;
      });
    }
  }

  #sendDatagram(message: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#socket.send(message, this.#port, this.#host, (err) => (err ? reject(err) : resolve()));
    });
  }
}

/** Export time of a message: Unix seconds. */
export function exportTimeS(): number {
  return Math.floor(Date.now() / 1000);
}
