/**
 * A pbflow collector: the gRPC service `pbflow.Collector/Send` of the reference, receiving
 * `Records` from flowtap or the reference agent and handing them on as one RecordBatch per request
 * (the hand-written decoder, no object per flow) or as Flow objects. Used by `flowtap collect` and
 * available to users writing their own collector.
 *
 * A request that is not a valid `pbflow.Records` is answered INVALID_ARGUMENT, one above the size
 * bound RESOURCE_EXHAUSTED (by grpc-js), and a failing `onRecords` INTERNAL; each is reported to
 * `onError` and the server goes on serving. The reply is sent after `onRecords` settles, so a
 * slow consumer slows the senders down instead of growing a buffer.
 */
import { isIPv6 } from 'node:net';
import {
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type ServiceDefinition,
  type sendUnaryData,
  status,
} from '@grpc/grpc-js';
import type { RecordBatch } from '../codec/record-batch.ts';
import { ListenError, MalformedMessageError } from '../errors.ts';
import type { Flow } from '../model/flow.ts';
import { DEFAULT_MAX_RECEIVE_MESSAGE_BYTES } from './grpc-limits.ts';
import { decodePbRecords } from './pbflow/decode.ts';
import { flowsFromPbRecords } from './pbflow/from-pb.ts';

/** Full method path of the reference's service: package `pbflow`, service `Collector`, rpc `Send`. */
export const COLLECTOR_SEND_PATH = '/pbflow.Collector/Send';
export { DEFAULT_MAX_RECEIVE_MESSAGE_BYTES };
/** Default time `close()` lets calls in progress finish before cutting them. */
export const DEFAULT_CLOSE_GRACE_MS = 1_000;

/** Settings of {@link startCollector}. */
export interface CollectorOptions {
  /** Receives the flows of every valid request as objects; the reply waits for it to settle. */
  onRecords?: (flows: Flow[], peer: string) => void | Promise<void>;
  /**
   * Receives the flows of every valid request as one batch, decoded without an object per flow
   * (see pbflow/decode.ts for its interface numbering); used instead of `onRecords` when given.
   * One of the two is required.
   */
  onBatch?: (batch: RecordBatch, peer: string) => void | Promise<void>;
  /** Address to listen on (default 127.0.0.1; 0.0.0.0 or :: for every interface). */
  host?: string;
  /** TCP port; 0 picks a free one (see `port` of the result). */
  port: number;
  /** Told about every rejected request (malformed, failed `onRecords`). */
  onError?: (err: Error, peer: string) => void;
  /** Largest request accepted, in bytes (default {@link DEFAULT_MAX_RECEIVE_MESSAGE_BYTES}). */
  maxReceiveMessageBytes?: number;
  /** TLS (see serverCredentialsFromFiles in tls.ts); default plaintext. */
  credentials?: ServerCredentials;
}

/** A listening collector. */
export interface RunningCollector {
  /** The port it listens on (the chosen one when started with port 0). */
  readonly port: number;
  /**
   * Stops accepting calls, lets the ones in progress finish for up to `graceMs`, then cuts them.
   * `close(0)` cuts at once, like a crashing collector.
   */
  close(graceMs?: number): Promise<void>;
}

const EMPTY_REPLY = Buffer.alloc(0);

/** The Collector service with raw-bytes (de)serializers: decoding happens in the handler, where errors can be answered. */
const COLLECTOR_SERVICE: ServiceDefinition = {
  Send: {
    path: COLLECTOR_SEND_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: (bytes: Buffer) => bytes,
    requestDeserialize: (bytes: Buffer) => bytes,
    // CollectorReply has no fields: its serialized form is empty.
    responseSerialize: () => EMPTY_REPLY,
    responseDeserialize: (bytes: Buffer) => bytes,
  },
};

function bindAddress(host: string, port: number): string {
  return `${isIPv6(host) ? `[${host}]` : host}:${port}`;
}

/** Starts a collector and resolves once it listens. */
export async function startCollector(options: CollectorOptions): Promise<RunningCollector> {
  if (!options.onBatch && !options.onRecords)
    throw new TypeError('startCollector needs onRecords or onBatch');
  const server = new Server({
    'grpc.max_receive_message_length': options.maxReceiveMessageBytes ?? DEFAULT_MAX_RECEIVE_MESSAGE_BYTES,
  });
  const reject = (err: Error, peer: string, code: status, callback: sendUnaryData<Buffer>) => {
    options.onError?.(err, peer);
    callback({ code, details: err.message });
  };
  server.addService(COLLECTOR_SERVICE, {
    Send: (call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) => {
      const peer = call.getPeer();
      let deliver: () => void | Promise<void>;
      try {
        if (options.onBatch) {
          const batch = decodePbRecords(call.request);
          const onBatch = options.onBatch;
          deliver = () => onBatch(batch, peer);
        } else {
          const flows = flowsFromPbRecords(call.request);
          const onRecords = options.onRecords as NonNullable<CollectorOptions['onRecords']>;
          deliver = () => onRecords(flows, peer);
        }
      } catch (err) {
        if (err instanceof MalformedMessageError) reject(err, peer, status.INVALID_ARGUMENT, callback);
        else throw err;
        return;
      }
      Promise.resolve()
        .then(deliver)
        .then(
          () => callback(null, EMPTY_REPLY),
          (err: unknown) => {
            const error = err instanceof Error ? err : new Error(String(err));
            reject(error, peer, status.INTERNAL, callback);
          },
        );
    },
  });
  const host = options.host ?? '127.0.0.1';
  const port = await new Promise<number>((resolve, rejectBind) => {
    server.bindAsync(
      bindAddress(host, options.port),
      options.credentials ?? ServerCredentials.createInsecure(),
      (err, boundPort) => {
        if (err) {
          rejectBind(new ListenError(bindAddress(host, options.port), { cause: err }));
        } else resolve(boundPort);
      },
    );
  });
  return {
    port,
    close(graceMs = DEFAULT_CLOSE_GRACE_MS) {
      return new Promise<void>((resolve) => {
        if (graceMs <= 0) {
          server.forceShutdown();
          resolve();
          return;
        }
        const timer = setTimeout(() => server.forceShutdown(), graceMs);
        timer.unref();
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}
