/**
 * `--from kafka`: pbflow `Record` messages (what EXPORT=kafka and the reference produce) read by a
 * consumer group, so several collectors with one KAFKA_GROUP_ID share the topic's partitions and
 * the survivors take over the partitions of one that dies.
 *
 * At least once: kafkajs's automatic commits are off (a resolved offset only moves the fetch
 * position). Each batch fetched from a partition is decoded, accepted by the sinks (waiting while
 * their queues are full: the partition is not fetched meanwhile), and its next offset is committed
 * only once every sink stored it and every earlier batch of the partition (kafka-commits.ts, one
 * request at a time for all partitions). After a crash, the partitions' new owners start from the
 * last committed offsets, so what repeats is what the dead collector had read but not yet committed:
 * at most the flows queued in its sinks plus the batches being decoded, per partition it owned
 * (bounded by the sink queue, by default 1 M flows, and in practice one or two inserts' worth).
 */
import type { Consumer, EachBatchPayload } from 'kafkajs';
import { ConfigError, MalformedMessageError } from '../errors.ts';
import { createKafkajsClient, type KafkaLogger } from '../export/kafka.ts';
import { type KafkaSettings, parseKafkaSettings } from '../export/kafka-config.ts';
import { PbflowBatchDecoder } from '../export/pbflow/decode.ts';
import type { SourceMetrics } from './collect-metrics.ts';
import type { SinkFanOut } from './collector-sink.ts';
import { StoredOffsetCommits } from './kafka-commits.ts';

/** Default session timeout of the group: a member silent this long loses its partitions. */
export const DEFAULT_GROUP_SESSION_TIMEOUT_MS = 30_000;
/** Bytes fetched per partition per request at most (kafkajs's default is 1 MiB). */
const MAX_BYTES_PER_PARTITION = 4 * 1024 * 1024;

/** Settings of a {@link KafkaSource}. */
export interface KafkaSourceOptions {
  settings: KafkaSettings;
  /** The consumer group (KAFKA_GROUP_ID). */
  groupId: string;
  sinks: SinkFanOut;
  metrics: SourceMetrics;
  logger?: KafkaLogger & {
    info(fields: object, message: string): void;
    warn(fields: object, message: string): void;
  };
  sessionTimeoutMs?: number;
  /** Partitions processed at once (default: every partition assigned). */
  partitionsConsumedConcurrently?: number;
}

/** First wait before a consumer that kafkajs will not restart is replaced; doubles up to the max. */
const RESTART_MIN_MS = 1_000;
const RESTART_MAX_MS = 30_000;

/** A running consumer group member. */
export class KafkaSource {
  #consumer: Consumer;
  readonly #commits: StoredOffsetCommits;
  #stopping: Promise<void> | undefined;
  #restartDelayMs = RESTART_MIN_MS;
  #restartTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: KafkaSourceOptions) {
    this.#consumer = this.#newConsumer();
    this.#commits = new StoredOffsetCommits(
      options.settings.topic,
      (offsets) => this.#consumer.commitOffsets(offsets),
      () => {
        options.metrics.commitFailures++;
      },
    );
  }

  #newConsumer(): Consumer {
    const options = this.options;
    const sessionTimeout = options.sessionTimeoutMs ?? DEFAULT_GROUP_SESSION_TIMEOUT_MS;
    const consumer = createKafkajsClient(options.settings, options.logger).consumer({
      groupId: options.groupId,
      sessionTimeout,
      // kafkajs requires the rebalance timeout to be at least the session timeout.
      rebalanceTimeout: Math.max(sessionTimeout, 10_000),
      heartbeatInterval: Math.max(100, Math.floor(sessionTimeout / 10)),
      maxBytesPerPartition: MAX_BYTES_PER_PARTITION,
      maxBytes: MAX_BYTES_PER_PARTITION * 4,
    });
    const { GROUP_JOIN, CRASH } = consumer.events;
    consumer.on(CRASH, (event) => {
      // kafkajs restarts the consumer itself after retriable errors only; after any other error
      // a collector left without a consumer would read nothing until restarted by hand, so a
      // new consumer joins the group instead (its partitions meanwhile go to the other members).
      const restart = event.payload.restart;
      options.logger?.warn(
        { groupId: options.groupId, restart },
        `the Kafka consumer failed: ${event.payload.error.message}; ${restart ? 'kafkajs restarts it' : `a new consumer joins the group in ${this.#restartDelayMs / 1000} s`}`,
      );
      if (!restart) this.#scheduleRestart(consumer);
    });
    consumer.on(GROUP_JOIN, (event) => {
      const partitions = event.payload.memberAssignment[options.settings.topic] ?? [];
      options.logger?.info(
        { groupId: options.groupId, topic: options.settings.topic, partitions },
        `joined consumer group ${options.groupId}: partitions ${partitions.join(', ') || 'none'}`,
      );
    });
    return consumer;
  }

  /** Replaces the consumer `crashed` after the current delay, unless the source is stopping. */
  #scheduleRestart(crashed: Consumer): void {
    if (this.#stopping !== undefined || this.#restartTimer !== undefined) return;
    this.#restartTimer = setTimeout(async () => {
      this.#restartTimer = undefined;
      if (this.#stopping !== undefined) return;
      await crashed.disconnect().catch(() => {});
      this.#consumer = this.#newConsumer();
      try {
        await this.start();
        this.#restartDelayMs = RESTART_MIN_MS;
      } catch (err) {
        this.#restartDelayMs = Math.min(this.#restartDelayMs * 2, RESTART_MAX_MS);
        this.options.logger?.warn(
          { groupId: this.options.groupId },
          `the Kafka consumer could not rejoin: ${(err as Error).message}; next try in ${this.#restartDelayMs / 1000} s`,
        );
        this.#scheduleRestart(this.#consumer);
      }
    }, this.#restartDelayMs);
  }

  /** Joins the group and starts consuming (from the beginning for a group with no commits). */
  async start(): Promise<void> {
    const consumer = this.#consumer;
    await consumer.connect();
    await consumer.subscribe({ topic: this.options.settings.topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.options.partitionsConsumedConcurrently ?? 64,
      eachBatch: (payload) => this.#batch(payload),
    });
  }

  /** Leaves the group (its partitions go to the others at once); idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      clearTimeout(this.#restartTimer);
      this.#restartTimer = undefined;
      await this.#consumer.stop();
      await this.#commits.settled();
      await this.#consumer.disconnect();
    })();
    return this.#stopping;
  }

  async #batch({ batch, heartbeat, isRunning, isStale, resolveOffset }: EachBatchPayload): Promise<void> {
    if (batch.messages.length === 0 || !isRunning() || isStale()) return;
    const { metrics, sinks } = this.options;
    const decoder = new PbflowBatchDecoder(batch.messages.length);
    for (const message of batch.messages) {
      if (message.value === null) {
        metrics.drop('empty_message');
        continue;
      }
      try {
        decoder.appendRecord(message.value);
      } catch (err) {
        if (!(err instanceof MalformedMessageError)) throw err;
        metrics.drop('malformed');
      }
    }
    const rows = decoder.finish();
    metrics.received += rows.count;
    metrics.lagByPartition.set(batch.partition, Number(batch.offsetLag()));
    const { stored } = await sinks.accept(rows);
    // Resolving moves kafkajs's fetch position on; only the commit below moves the group's.
    resolveOffset(batch.lastOffset());
    this.#commits.add(batch.partition, String(BigInt(batch.lastOffset()) + 1n), stored);
    await heartbeat();
  }
}

/** The consumer group setting `--from kafka` needs beside the exporter's KAFKA_* settings. */
export const KAFKA_GROUP_ID = 'KAFKA_GROUP_ID';

/**
 * The KAFKA_* settings of `--from kafka` from `env`: the exporter's (same names, same checks)
 * and KAFKA_GROUP_ID, which it requires.
 */
export function parseKafkaSourceSettings(env: Readonly<Record<string, string | undefined>>): {
  settings: KafkaSettings;
  groupId: string;
} {
  const raw: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (name.startsWith('KAFKA_') && name !== KAFKA_GROUP_ID && value !== undefined) raw[name] = value;
  }
  const groupId = env[KAFKA_GROUP_ID]?.trim() ?? '';
  if (groupId === '') {
    throw new ConfigError(
      KAFKA_GROUP_ID,
      '',
      'a consumer group name for --from kafka: collectors with the same one share the partitions',
    );
  }
  return { settings: parseKafkaSettings(raw), groupId };
}
