/**
 * `flowtap collect`: the fleet collector. Sources (`--from`, any of them together): gRPC
 * `Collector.Send` from flowtap agents (EXPORT=grpc) or the reference agent, a Kafka consumer
 * group (the KAFKA_* settings of the exporter plus KAFKA_GROUP_ID), and IPFIX over UDP and/or TCP
 * on `--ipfix-port` (flowtap's EXPORT=ipfix+udp/ipfix+tcp and other exporters). Sinks (`--to`, any of them
 * together): JSON lines in the reference's form or tables on stdout, the embedded DuckDB flow
 * store, and ClickHouse. Sources and sinks live in src/collect/; this module parses the flags and
 * wires them. With `--metrics-port` it serves /metrics and /health. Rejected requests are logged
 * on stderr; SIGINT/SIGTERM stop the sources, then let the sinks store what they hold. With
 * `--tls-cert`/`--tls-key` gRPC is served over TLS, and with `--tls-client-ca` client
 * certificates are required (mutual TLS); each flag may come from its COLLECTOR_TLS_* variable.
 */
import { once } from 'node:events';
import { type Command, Option } from 'commander';
import { CollectMetrics } from '../../collect/collect-metrics.ts';
import { type CollectorSink, SinkFanOut } from '../../collect/collector-sink.ts';
import { PrintSink } from '../../collect/print-sink.ts';
import { runningKernelDropReasons } from '../../ebpf/drop-reasons.ts';
import { ConfigError } from '../../errors.ts';
import { DEFAULT_MAX_RECEIVE_MESSAGE_BYTES } from '../../export/grpc-limits.ts';
import { DEFAULT_IPFIX_PORT } from '../../export/ipfix/templates.ts';
import type { PemFile, ServerTlsFiles } from '../../export/tls.ts';
import { parseDurationMs } from '../duration.ts';
import { createLogger, type Logger } from '../logger.ts';
import { flowStdout } from '../stdout.ts';
import { formatTable } from '../table-output.ts';

/** Sources `--from` names; `ipfix` is both `ipfix+udp` and `ipfix+tcp`. */
export const COLLECT_SOURCES = ['grpc', 'kafka', 'ipfix', 'ipfix+udp', 'ipfix+tcp'] as const;
type CollectSource = (typeof COLLECT_SOURCES)[number];
/** Time the sinks get at stop to store what they hold. */
const SINK_CLOSE_TIMEOUT_MS = 10_000;
/** Time the sources get at stop to finish the batches they are handing over. */
const SOURCE_STOP_TIMEOUT_MS = 5_000;

/** Options of `flowtap collect` as commander parses them. */
interface CollectOptions {
  port?: number;
  ipfixPort: number;
  host: string;
  output?: 'json' | 'table';
  from: CollectSource[];
  to?: string[];
  metricsPort?: number;
  kafkaSessionTimeout?: number;
  maxMessageBytes: number;
  tlsCert?: string;
  tlsKey?: string;
  tlsClientCa?: string;
}

function integerIn(setting: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new ConfigError(setting, value, `an integer from ${min} to ${max}`);
    }
    return n;
  };
}

function outputFormat(value: string): 'json' | 'table' {
  if (value !== 'json' && value !== 'table') throw new ConfigError('--output', value, 'json or table');
  return value;
}

/** The TLS flags and their variables, by option key. */
const TLS_OPTIONS = {
  tlsCert: { flag: '--tls-cert', env: 'COLLECTOR_TLS_CERT_PATH' },
  tlsKey: { flag: '--tls-key', env: 'COLLECTOR_TLS_KEY_PATH' },
  tlsClientCa: { flag: '--tls-client-ca', env: 'COLLECTOR_TLS_CLIENT_CA_PATH' },
} as const;

/** The TLS files given (flags or COLLECTOR_TLS_*), each named as the user gave it; undefined = plaintext. */
function tlsFiles(opts: CollectOptions, command: Command): ServerTlsFiles | undefined {
  const file = (key: keyof typeof TLS_OPTIONS): PemFile | undefined => {
    const path = opts[key];
    if (path === undefined) return undefined;
    const { flag, env } = TLS_OPTIONS[key];
    return { setting: command.getOptionValueSource(key) === 'env' ? env : flag, path };
  };
  const [cert, key, clientCa] = [file('tlsCert'), file('tlsKey'), file('tlsClientCa')];
  if (cert === undefined && key === undefined) {
    if (clientCa) {
      throw new ConfigError(
        clientCa.setting,
        clientCa.path,
        "a client CA only with --tls-cert and --tls-key: mutual TLS needs the collector's own certificate",
      );
    }
    return undefined;
  }
  if (cert === undefined || key === undefined) {
    const given = (cert ?? key) as PemFile;
    const missing = cert === undefined ? TLS_OPTIONS.tlsCert : TLS_OPTIONS.tlsKey;
    throw new ConfigError(
      missing.flag,
      '',
      `a PEM file (or ${missing.env}) to go with ${given.setting}=${given.path}`,
    );
  }
  return { keyPair: { cert, key }, clientCa };
}

function sourceList(value: string, previous: CollectSource[] | undefined): CollectSource[] {
  const list = value.split(',').map((v) => v.trim().toLowerCase());
  for (const v of list) {
    if (!(COLLECT_SOURCES as readonly string[]).includes(v)) {
      throw new ConfigError('--from', value, COLLECT_SOURCES.join(', '));
    }
  }
  return [...(previous ?? []), ...(list as CollectSource[])];
}

function sinkList(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function durationOption(setting: string) {
  return (value: string): number => {
    const ms = parseDurationMs(value);
    if (ms === undefined || ms < 1) throw new ConfigError(setting, value, 'a duration such as 10s or 500ms');
    return ms;
  };
}

/**
 * The sink `--to` names: json, table, store[:PATH] or clickhouse://host[:port]/db. Printed drop
 * reasons are named by this host's kernel (an agent's kernel may name a few more: those print as
 * UNKNOWN_<n>); stores keep the numbers.
 */
async function openSink(target: string, metrics: CollectMetrics, log: Logger): Promise<CollectorSink> {
  const lower = target.toLowerCase();
  if (lower === 'json' || lower === 'table') {
    const dropReasons = () => runningKernelDropReasons((message) => log.warn(message));
    return new PrintSink(
      flowStdout(),
      lower,
      metrics.sink(lower),
      (batch) => formatTable(batch, undefined, dropReasons),
      dropReasons,
    );
  }
  if (lower === 'store' || lower.startsWith('store:')) {
    const { FlowStore } = await import('../../store/flow-store.ts');
    const { DuckDbSink } = await import('../../collect/duckdb-sink.ts');
    const { defaultStoreDirectory, storeFile } = await import('../../store/store-path.ts');
    const path =
      target.slice('store:'.length) || process.env.STORE_PATH || defaultStoreDirectory(process.env);
    return new DuckDbSink(await FlowStore.open(storeFile(path)), metrics.sink('store'));
  }
  const store = await import('../../store/clickhouse-store.ts');
  if (store.isClickHouseUrl(target)) {
    const { ClickHouseSink } = await import('../../collect/clickhouse-sink.ts');
    const clickhouse = new store.ClickHouseStore(store.parseClickHouseUrl('--to', target));
    try {
      await clickhouse.ensureSchema();
    } catch (err) {
      await clickhouse.close();
      throw err;
    }
    return new ClickHouseSink(clickhouse, metrics.sink('clickhouse'));
  }
  throw new ConfigError(
    '--to',
    target,
    'json, table, store, store:PATH or clickhouse://host[:port]/database',
  );
}

/** Something started that stop() ends. */
interface Stoppable {
  stop(): Promise<void>;
}

async function startGrpc(
  opts: CollectOptions,
  command: Command,
  sinks: SinkFanOut,
  metrics: CollectMetrics,
  log: Logger,
): Promise<Stoppable> {
  if (opts.port === undefined) throw new ConfigError('--port', '', 'the TCP port --from grpc listens on');
  // Loaded here so other commands do not pay for gRPC at start-up.
  const { startCollector } = await import('../../export/grpc-collector.ts');
  const { serverCredentialsFromFiles } = await import('../../export/tls.ts');
  const tls = tlsFiles(opts, command);
  const credentials = tls && (await serverCredentialsFromFiles(tls));
  const source = metrics.source('grpc');
  const collector = await startCollector({
    host: opts.host,
    port: opts.port,
    credentials,
    maxReceiveMessageBytes: opts.maxMessageBytes,
    // The reply waits until the sinks took the batch, so full queues slow the agents, not our memory.
    onBatch: async (batch) => {
      source.received += batch.count;
      const { stored } = await sinks.accept(batch);
      // gRPC senders do not resend: a batch a sink gives up on is counted there as dropped.
      stored.catch(() => undefined);
    },
    onError: (err, peer) => {
      source.drop('rejected_request');
      log.warn({ peer, code: (err as { code?: string }).code }, `rejected a request: ${err.message}`);
    },
  });
  const security = !tls ? 'plaintext' : tls.clientCa ? 'TLS, client certificates required' : 'TLS';
  log.info(
    { host: opts.host, port: collector.port, security },
    `listening on ${opts.host}:${collector.port} (${security})`,
  );
  return { stop: () => collector.close() };
}

async function startKafka(
  opts: CollectOptions,
  sinks: SinkFanOut,
  metrics: CollectMetrics,
  log: Logger,
): Promise<Stoppable> {
  const { KafkaSource, parseKafkaSourceSettings } = await import('../../collect/kafka-source.ts');
  const { settings, groupId } = parseKafkaSourceSettings(process.env);
  const source = new KafkaSource({
    settings,
    groupId,
    sinks,
    metrics: metrics.source('kafka'),
    logger: log,
    sessionTimeoutMs: opts.kafkaSessionTimeout,
  });
  await source.start();
  log.info({ topic: settings.topic, groupId }, `consuming ${settings.topic} in group ${groupId}`);
  return source;
}

async function startIpfix(
  opts: CollectOptions,
  transports: ('udp' | 'tcp')[],
  sinks: SinkFanOut,
  metrics: CollectMetrics,
  log: Logger,
): Promise<Stoppable> {
  const { IpfixSource } = await import('../../collect/ipfix-source.ts');
  const source = await IpfixSource.start({
    host: opts.host,
    port: opts.ipfixPort,
    transports,
    sinks,
    metrics: { udp: metrics.source('ipfix+udp'), tcp: metrics.source('ipfix+tcp') },
    logger: log,
  });
  for (const transport of transports) {
    const port = source.ports[transport];
    log.info(
      { host: opts.host, port, transport },
      `IPFIX over ${transport.toUpperCase()} on ${opts.host}:${port}`,
    );
  }
  return source;
}

/** The IPFIX transports `from` asks for. */
function ipfixTransports(from: readonly CollectSource[]): ('udp' | 'tcp')[] {
  const udp = from.includes('ipfix') || from.includes('ipfix+udp');
  const tcp = from.includes('ipfix') || from.includes('ipfix+tcp');
  return [...(udp ? ['udp' as const] : []), ...(tcp ? ['tcp' as const] : [])];
}

async function collect(opts: CollectOptions, command: Command): Promise<void> {
  const log = createLogger('info');
  const metrics = new CollectMetrics();
  const targets = opts.to ?? [opts.output ?? 'json'];
  const opened: CollectorSink[] = [];
  const sources: Stoppable[] = [];
  let metricsServer: { port: number; close(): Promise<void> } | undefined;
  const fanOut = new SinkFanOut(opened);
  const stopAll = async () => {
    // A source blocked on full sink queues ends only once the sinks close: wait for the sources
    // only so long, then close the sinks (what they refuse then is not committed, so Kafka replays it).
    const sourcesStopped = Promise.allSettled(sources.map((s) => s.stop()));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      sourcesStopped,
      new Promise((resolve) => (timer = setTimeout(resolve, SOURCE_STOP_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
    await fanOut.close(SINK_CLOSE_TIMEOUT_MS);
    await sourcesStopped;
    await metricsServer?.close();
  };
  try {
    for (const target of targets) opened.push(await openSink(target, metrics, log));
    const from = opts.from.length === 0 ? (['grpc'] as CollectSource[]) : [...new Set(opts.from)];
    if (from.includes('grpc')) sources.push(await startGrpc(opts, command, fanOut, metrics, log));
    if (from.includes('kafka')) sources.push(await startKafka(opts, fanOut, metrics, log));
    const transports = ipfixTransports(from);
    if (transports.length > 0) sources.push(await startIpfix(opts, transports, fanOut, metrics, log));
    if (opts.metricsPort !== undefined) {
      const { startMetricsServer } = await import('../../collect/metrics-server.ts');
      metricsServer = await startMetricsServer(metrics, opts.host, opts.metricsPort);
      log.info({ port: metricsServer.port }, `metrics on http://${opts.host}:${metricsServer.port}/metrics`);
    }
    const signal = await Promise.race([once(process, 'SIGINT'), once(process, 'SIGTERM')]);
    log.info({ signal }, 'stopping');
    await stopAll();
    log.info(metrics.health(), 'stopped');
  } finally {
    // Also when starting failed: release what was started (idempotent after a normal stop).
    await stopAll();
  }
}

/** Registers `flowtap collect`. */
export function registerCollectCommand(program: Command): void {
  program
    .command('collect')
    .description(
      'collect flows (gRPC from agents, a Kafka consumer group, IPFIX exporters) and print or store them (stdout, DuckDB store, ClickHouse)',
    )
    .option(
      '--from <source>',
      `where flows come from: ${COLLECT_SOURCES.join(', ')} (repeat or comma-separate) [grpc]`,
      sourceList,
      [],
    )
    .option(
      '--to <sink>',
      'where flows go: json, table, store[:PATH] (the DuckDB store), clickhouse://[user[:password]@]host[:port]/database (repeatable) [json]',
      sinkList,
    )
    .option(
      '--port <n>',
      'TCP port --from grpc listens on (0 picks a free one)',
      integerIn('--port', 0, 65_535),
    )
    .option(
      '--ipfix-port <n>',
      `UDP and TCP port --from ipfix listens on (0 picks free ones) [${DEFAULT_IPFIX_PORT}]`,
      integerIn('--ipfix-port', 0, 65_535),
      DEFAULT_IPFIX_PORT,
    )
    .option('--host <address>', 'address to listen on (0.0.0.0 or :: for every interface)', '127.0.0.1')
    .option(
      '--output <format>',
      'json (JSON lines in the reference form) or table; same as --to json|table',
      outputFormat,
    )
    .option(
      '--metrics-port <n>',
      'serve /metrics and /health on this port of --host',
      integerIn('--metrics-port', 0, 65_535),
    )
    .option(
      '--kafka-session-timeout <duration>',
      'a group member silent this long loses its partitions to the others [30s]',
      durationOption('--kafka-session-timeout'),
    )
    .option(
      '--max-message-bytes <n>',
      'largest request accepted',
      integerIn('--max-message-bytes', 1024, 2 ** 31 - 1),
      DEFAULT_MAX_RECEIVE_MESSAGE_BYTES,
    )
    .addOption(
      new Option('--tls-cert <file>', 'serve TLS with this PEM certificate chain (needs --tls-key)').env(
        TLS_OPTIONS.tlsCert.env,
      ),
    )
    .addOption(new Option('--tls-key <file>', 'PEM private key of --tls-cert').env(TLS_OPTIONS.tlsKey.env))
    .addOption(
      new Option(
        '--tls-client-ca <file>',
        'require client certificates signed by these PEM CAs (mutual TLS; needs --tls-cert)',
      ).env(TLS_OPTIONS.tlsClientCa.env),
    )
    .addHelpText(
      'after',
      '\n--from kafka reads KAFKA_BROKERS, KAFKA_TOPIC and the other KAFKA_* settings of EXPORT=kafka, and\n' +
        'KAFKA_GROUP_ID: collectors with the same group share the partitions. Offsets are committed once\n' +
        'every sink stored the flows (at least once: see README "Fleet collector").\n' +
        'Examples:\n  flowtap collect --port 9999\n' +
        '  KAFKA_BROKERS=k1:9092 KAFKA_GROUP_ID=flowtap flowtap collect --from kafka --to clickhouse://ch:8123/flows\n' +
        '  flowtap collect --from ipfix --host 0.0.0.0 --to store\n' +
        '  flowtap query top talkers --store clickhouse://ch:8123/flows',
    )
    .action((opts: CollectOptions, command: Command) => collect(opts, command));
}
