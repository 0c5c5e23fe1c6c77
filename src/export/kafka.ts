/**
 * `EXPORT=kafka`: every flow as one Kafka message, as the reference's later releases write them.
 * The value is one protobuf `pbflow.Record` (encode.ts); the key is the flow's two addresses,
 * 16 bytes each (IPv4 mapped), lowest first, so both directions of a conversation hash to the same
 * partition. A batch is produced in calls of at most KAFKA_BATCH_MESSAGES messages and
 * KAFKA_BATCH_SIZE key and value bytes, each acknowledged by all in-sync replicas (acks=-1).
 *
 * While brokers are down or a leader moves, a produce call is retried (kafkajs retries briefly
 * inside, this exporter backs off exponentially with jitter outside, on unref()'d timers) for at
 * most `retryTimeoutMs`; meanwhile later batches wait in the bounded queue and beyond it are
 * dropped and counted. A batch still undelivered then, or refused by the broker for good (too
 * large, not authorised), is counted as failed by reason and the next one is tried, so the
 * exporter recovers by itself when the cluster comes back. The client sits behind
 * {@link KafkaProducerClient}, so tests can drive all of this with a fake.
 */

import { decompress as zstdDecompress } from 'fzstd';
import kafkajs, {
  CompressionTypes,
  Kafka,
  type LogEntry,
  logLevel,
  Partitioners,
  type SASLOptions,
} from 'kafkajs';
import { compressFrame, decompressFrame } from 'lz4-napi';
import { compress as snappyCompress, uncompress as snappyUncompress } from 'snappy';
import { splitBiflows } from '../account/biflow.ts';
import type { RecordBatch } from '../codec/record-batch.ts';
import { V2 } from '../codec/v2-layout.ts';
import { ExportError } from '../errors.ts';
import { IP_BYTES } from '../model/ip.ts';
import { QueuedExporter, type QueuedExporterOptions } from './exporter.ts';
import type { KafkaCompression, KafkaSettings } from './kafka-config.ts';
import { encodePbRecordList } from './pbflow/encode.ts';
import { type BackoffOptions, ReconnectBackoff, waitUnref } from './reconnect-backoff.ts';

/** Bytes of a message key: two 16-byte addresses. */
export const KAFKA_KEY_BYTES = 2 * IP_BYTES;
/** Default time one produce call is retried before its flows count as failed. */
export const DEFAULT_KAFKA_RETRY_TIMEOUT_MS = 30_000;
/** kafkajs's wait for a TCP (and TLS) connection to a broker. */
const CONNECTION_TIMEOUT_MS = 3_000;
/** kafkajs's wait for a broker's answer to one request. */
const REQUEST_TIMEOUT_MS = 10_000;
/** kafkajs's own quick retries (leader moved, metadata stale); longer outages are ours to wait out. */
const KAFKAJS_RETRIES = 3;
const KAFKAJS_INITIAL_RETRY_MS = 100;
const KAFKAJS_MAX_RETRY_MS = 1_000;
/** How long `stop()` lets the client close its connections. */
const DISCONNECT_TIMEOUT_MS = 2_000;
/** All in-sync replicas acknowledge: a batch counts as sent only when it is safely stored. */
const ACKS_ALL = -1;

/** One message as produced. */
export interface KafkaMessage {
  key: Buffer;
  value: Buffer;
}

/** The part of a Kafka client the exporter uses; the seam where tests put a fake. */
export interface KafkaProducerClient {
  /** Connects (again, after a failure); throws when no broker answers. */
  connect(): Promise<void>;
  /** Produces `messages` to `topic`; resolves once the brokers acknowledged them all. */
  send(topic: string, messages: KafkaMessage[]): Promise<void>;
  /** Closes every connection. */
  disconnect(): Promise<void>;
}

/** Where the exporter and kafkajs log: pino's Logger fits. */
export interface KafkaLogger {
  warn(fields: object, message: string): void;
  debug(fields: object, message: string): void;
}

/** Builds the client from the settings (kafkajs by default). */
export type KafkaProducerFactory = (
  settings: KafkaSettings,
  logger: KafkaLogger | undefined,
) => KafkaProducerClient;

/** Why flows were not delivered. */
export type KafkaFailureReason = 'retry-timeout' | 'rejected' | 'stopped';

/** Kafka-specific counters, beside the shared {@link QueuedExporter.stats}. */
export interface KafkaExporterStats {
  /** Produce calls (or connects) retried after a failure. */
  retries: number;
  /** Successful connects, the first one included. */
  connections: number;
  /** Messages the brokers acknowledged. */
  messagesAcked: number;
  /** Flows not delivered, by reason (a batch failing half-way counts only its undelivered flows). */
  flowsFailed: Record<KafkaFailureReason, number>;
}

/** Settings of a {@link KafkaExporter}. */
export interface KafkaExporterOptions extends QueuedExporterOptions, BackoffOptions {
  /** The parsed KAFKA_* settings (kafka-config.ts). */
  settings: KafkaSettings;
  /** Receives the exporter's warnings and kafkajs's own log lines (at debug); none when undefined. */
  logger?: KafkaLogger;
  /** Called with every failed produce or connect attempt that will be retried. */
  onTransportError?: (err: Error) => void;
  /** How long one produce call is retried (default {@link DEFAULT_KAFKA_RETRY_TIMEOUT_MS}). */
  retryTimeoutMs?: number;
  /** The client (default {@link createKafkajsProducer}). */
  createProducer?: KafkaProducerFactory;
}

/** Produces flows to Kafka, one pbflow.Record per message. */
export class KafkaExporter extends QueuedExporter {
  readonly name = 'kafka';
  /** Kafka-specific counters. */
  readonly kafkaStats: KafkaExporterStats = {
    retries: 0,
    connections: 0,
    messagesAcked: 0,
    flowsFailed: { 'retry-timeout': 0, rejected: 0, stopped: 0 },
  };
  readonly #settings: KafkaSettings;
  readonly #client: KafkaProducerClient;
  readonly #backoff: ReconnectBackoff;
  readonly #retryTimeoutMs: number;
  readonly #onTransportError?: (err: Error) => void;
  readonly #stopping = new AbortController();
  #connected = false;

  constructor(options: KafkaExporterOptions) {
    super(options);
    this.#settings = options.settings;
    this.#backoff = new ReconnectBackoff(options);
    this.#retryTimeoutMs = options.retryTimeoutMs ?? DEFAULT_KAFKA_RETRY_TIMEOUT_MS;
    this.#onTransportError = options.onTransportError;
    this.#client = (options.createProducer ?? createKafkajsProducer)(options.settings, options.logger);
  }

  protected async send(batch: RecordBatch): Promise<void> {
    const messages = kafkaMessagesOf(batch);
    const deadline = performance.now() + this.#retryTimeoutMs;
    const { batchMessages, batchBytes } = this.#settings;
    let delivered = 0;
    while (delivered < messages.length) {
      const end = chunkEnd(messages, delivered, batchMessages, batchBytes);
      try {
        await this.#produce(messages.slice(delivered, end), deadline);
      } catch (err) {
        const failure = err instanceof ProduceFailure ? err : new ProduceFailure('rejected', err);
        this.kafkaStats.flowsFailed[failure.reason] += messages.length - delivered;
        throw new ExportError(
          this.name,
          `${messages.length - delivered} of ${messages.length} flows not delivered (${failure.reason}): ` +
            describe(failure.cause),
          { cause: failure.cause },
        );
      }
      this.kafkaStats.messagesAcked += end - delivered;
      delivered = end;
    }
  }

  protected override abort(): void {
    this.#stopping.abort();
  }

  protected override async close(): Promise<void> {
    this.#stopping.abort();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, DISCONNECT_TIMEOUT_MS);
      timer.unref();
    });
    // Closing is best effort: the flows are accounted for, and a client that cannot close its
    // sockets (brokers gone) must not hold up the agent's shutdown.
    await Promise.race([this.#client.disconnect().catch(() => {}), timedOut]);
    clearTimeout(timer);
  }

  /** Produces one chunk, retrying with backoff until it is acknowledged, refused for good, or `deadline`. */
  async #produce(messages: KafkaMessage[], deadline: number): Promise<void> {
    for (;;) {
      try {
        if (!this.#connected) {
          await this.#client.connect();
          this.#connected = true;
          this.kafkaStats.connections++;
        }
        await this.#client.send(this.#settings.topic, messages);
        this.#backoff.reset();
        return;
      } catch (err) {
        // Connect again before the next attempt: kafkajs refuses to send once it has
        // disconnected, and a fresh connect refreshes the metadata after a leader moved.
        this.#connected = false;
        if (this.#stopping.signal.aborted) throw new ProduceFailure('stopped', err);
        if (isRefusedForGood(err)) throw new ProduceFailure('rejected', err);
        const delayMs = this.#backoff.nextDelayMs();
        if (performance.now() + delayMs > deadline) throw new ProduceFailure('retry-timeout', err);
        this.kafkaStats.retries++;
        this.#onTransportError?.(asError(err));
        try {
          await waitUnref(delayMs, this.#stopping.signal);
        } catch {
          throw new ProduceFailure('stopped', err);
        }
      }
    }
  }
}

/** A produce call that will not be retried, and why. */
class ProduceFailure extends Error {
  constructor(
    readonly reason: KafkaFailureReason,
    override readonly cause: unknown,
  ) {
    super(reason);
  }
}

/**
 * True when a broker refused the messages for a reason a retry cannot fix (a kafkajs protocol
 * error marked not retriable: message too large, topic invalid, not authorised), looked for along
 * the chain of causes kafkajs wraps its errors in.
 */
function isRefusedForGood(err: unknown): boolean {
  const seen = new Set<unknown>();
  const pending: unknown[] = [err];
  while (pending.length > 0) {
    const e = pending.pop();
    if (!(e instanceof Error) || seen.has(e)) continue;
    seen.add(e);
    if (e.name === 'KafkaJSProtocolError' && (e as { retriable?: boolean }).retriable === false) return true;
    pending.push(e.cause);
    const inner = (e as { errors?: unknown }).errors;
    if (Array.isArray(inner)) pending.push(...inner);
  }
  return false;
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Index after the last message of the chunk starting at `start`: at most `maxMessages`, and at
 * most `maxBytes` of keys and values unless one message alone is larger (it then goes alone).
 */
export function chunkEnd(
  messages: KafkaMessage[],
  start: number,
  maxMessages: number,
  maxBytes: number,
): number {
  const limit = Math.min(messages.length, start + maxMessages);
  let bytes = messages[start].key.length + messages[start].value.length;
  let end = start + 1;
  while (end < limit) {
    bytes += messages[end].key.length + messages[end].value.length;
    if (bytes > maxBytes) break;
    end++;
  }
  return end;
}

/**
 * Writes the message key of row `i` at `offset` of `out`: the row's two stored addresses (IPv4
 * already mapped), the bytewise lower one first, so A→B and B→A share a key and a partition.
 */
export function writeConversationKey(batch: RecordBatch, i: number, out: Buffer, offset: number): void {
  const row = batch.bytes;
  const src = batch.rowOffset(i) + V2.SRC_ADDR;
  const dst = batch.rowOffset(i) + V2.DST_ADDR;
  // Byte loops: for 16 bytes, Buffer.compare and Buffer.copy cost more in call overhead than work.
  let k = 0;
  while (k < IP_BYTES && row[src + k] === row[dst + k]) k++;
  const srcFirst = k === IP_BYTES || row[src + k] < row[dst + k];
  const first = srcFirst ? src : dst;
  const second = srcFirst ? dst : src;
  for (let j = 0; j < IP_BYTES; j++) {
    out[offset + j] = row[first + j];
    out[offset + IP_BYTES + j] = row[second + j];
  }
}

/**
 * Every row of `evicted` as a message (a bidirectional record as two, one per direction: pbflow
 * has no bidirectional form); keys and values are views into one buffer each.
 */
export function kafkaMessagesOf(evicted: RecordBatch): KafkaMessage[] {
  const batch = splitBiflows(evicted);
  const values = encodePbRecordList(batch, 0, batch.count);
  const keys = Buffer.allocUnsafe(batch.count * KAFKA_KEY_BYTES);
  const messages = new Array<KafkaMessage>(batch.count);
  for (let i = 0; i < batch.count; i++) {
    const at = i * KAFKA_KEY_BYTES;
    writeConversationKey(batch, i, keys, at);
    messages[i] = { key: Buffer.from(keys.buffer, keys.byteOffset + at, KAFKA_KEY_BYTES), value: values[i] };
  }
  return messages;
}

const COMPRESSION_TYPES: Record<KafkaCompression, CompressionTypes> = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
};

// kafkajs is CommonJS and assigns CompressionCodecs in a way Node's named-export detection misses.
const { CompressionCodecs } = kafkajs;
let codecsRegistered = false;

/**
 * Gives kafkajs the codecs it lacks (it has gzip only): snappy as raw snappy blocks, which Kafka
 * and librdkafka read for record batches, and lz4 as LZ4 frames with independent blocks and no
 * content size (lz4_flex's defaults), the form Kafka requires. Both are prebuilt N-API modules
 * installed as optional dependencies, with no install script. zstd is read only (fzstd, plain
 * JavaScript, decompresses; no zstd compressor installs without a script): `collect --from kafka`
 * consumes topics other producers compress with zstd, and the exporter refuses
 * KAFKA_COMPRESSION=zstd when its settings are parsed.
 */
function registerCodecs(): void {
  if (codecsRegistered) return;
  codecsRegistered = true;
  CompressionCodecs[CompressionTypes.Snappy] = () => ({
    compress: (encoder: { buffer: Buffer }) => snappyCompress(encoder.buffer),
    decompress: async (buffer: Buffer) => (await snappyUncompress(buffer)) as Buffer,
  });
  CompressionCodecs[CompressionTypes.LZ4] = () => ({
    compress: (encoder: { buffer: Buffer }) => compressFrame(encoder.buffer),
    decompress: (buffer: Buffer) => decompressFrame(buffer),
  });
  CompressionCodecs[CompressionTypes.ZSTD] = () => ({
    compress: () => {
      throw new Error('flowtap produces no zstd: KAFKA_COMPRESSION=zstd is refused before any send');
    },
    decompress: (buffer: Buffer) => {
      const bytes = zstdDecompress(buffer);
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    },
  });
}

/**
 * kafkajs's log lines go to `logger` at debug whatever their level: failures reach the user through
 * the exporter's own results and warnings, and kafkajs repeats them per broker and per retry.
 * Nothing goes to stdout, which carries the flows of `EXPORT=json`.
 */
function kafkajsLogCreator(logger: KafkaLogger | undefined) {
  return () =>
    ({ namespace, label, log }: LogEntry) => {
      if (!logger) return;
      const { message, timestamp: _timestamp, logger: _origin, ...fields } = log;
      logger.debug({ kafkajs: namespace, kafkajsLevel: label, ...fields }, message);
    };
}

/**
 * The kafkajs client of `settings` (brokers, TLS, SASL, timeouts, retries, codecs, logging): the
 * exporter's producer and the collector's consumer group both start from it.
 */
export function createKafkajsClient(settings: KafkaSettings, logger: KafkaLogger | undefined): Kafka {
  registerCodecs();
  const { tls, sasl } = settings;
  return new Kafka({
    clientId: 'flowtap',
    brokers: [...settings.brokers],
    ssl: tls && { ca: tls.ca, cert: tls.cert, key: tls.key, rejectUnauthorized: !tls.insecureSkipVerify },
    sasl:
      sasl &&
      ({ mechanism: sasl.mechanism, username: sasl.username, password: sasl.password } as SASLOptions),
    connectionTimeout: CONNECTION_TIMEOUT_MS,
    requestTimeout: REQUEST_TIMEOUT_MS,
    retry: {
      retries: KAFKAJS_RETRIES,
      initialRetryTime: KAFKAJS_INITIAL_RETRY_MS,
      maxRetryTime: KAFKAJS_MAX_RETRY_MS,
    },
    logLevel: logger ? logLevel.INFO : logLevel.NOTHING,
    logCreator: kafkajsLogCreator(logger),
  });
}

/** The kafkajs client for `settings`: the default {@link KafkaProducerFactory}. */
export function createKafkajsProducer(
  settings: KafkaSettings,
  logger: KafkaLogger | undefined,
): KafkaProducerClient {
  const kafka = createKafkajsClient(settings, logger);
  // The default (murmur2) partitioner, as the Java client and kafka-go's Hash balancer place keys;
  // naming it also silences kafkajs's warning about its v2 partitioner change.
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  const compression = COMPRESSION_TYPES[settings.compression];
  return {
    connect: () => producer.connect(),
    send: async (topic, messages) => {
      await producer.send({ topic, messages, acks: ACKS_ALL, compression });
    },
    disconnect: () => producer.disconnect(),
  };
}
