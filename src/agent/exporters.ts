/**
 * EXPORT → exporter instances. Independent of live capture, so `flowtap read` builds its exporters
 * the same way. Every exporter queues at most BUFFERS_LENGTH batches and counts what it drops.
 */
import type { Writable } from 'node:stream';
import { runningKernelDropReasons } from '../ebpf/drop-reasons.ts';
import { ConfigError, NotSupportedError, TlsHandshakeError } from '../errors.ts';
import type { BatchResult } from '../export/exporter.ts';
import { JsonLinesExporter } from '../export/json-lines.ts';
import type { DropReasonSource } from '../model/drop-reasons.ts';
import type { FlowSink } from '../sink/flow-sink.ts';
import type { StoreExporter } from '../store/store-exporter.ts';
import type { StoreQueries } from '../store/store-reader.ts';
import type { ExportKind, ExportSettings } from './config.ts';
import type { Logger } from './logger.ts';
import { warnNetworkFailure } from './network-problems.ts';
import { ReverseNames } from './reverse-names.ts';
import { flowStdout } from './stdout.ts';
import { TableOutput } from './table-output.ts';

/** What an exporter is built from. */
export interface ExporterContext {
  settings: ExportSettings;
  logger: Logger;
  /** Told every batch outcome (metrics, logs). */
  onResult: (result: BatchResult) => void;
  /** Where the `json` export writes. */
  stdout: Writable;
  /** Names of the running kernel's drop reasons, read when an output first needs them. */
  dropReasons: DropReasonSource;
}

/**
 * Builds the exporter of one kind. Factories import their exporter's module when called, so a
 * command loads the Kafka, gRPC or IPFIX clients (half a second of start-up together) only when
 * its EXPORT names them.
 */
export type ExporterFactory = (context: ExporterContext) => Promise<FlowSink>;

/** The exporters this build has, by EXPORT kind. */
export const EXPORTER_FACTORIES: Partial<Record<ExportKind, ExporterFactory>> = {
  json: async (c) => {
    const options = {
      out: c.stdout,
      maxQueuedBatches: c.settings.buffersLength,
      onResult: c.onResult,
      dropReasons: c.dropReasons,
    };
    // `live` is run's view (src/agent/terminal/); a capture file read on a terminal gets tables.
    if (c.settings.output === 'json') return new JsonLinesExporter(options);
    return new TableOutput({ ...options, nameOf: c.settings.resolve ? reverseNameOf() : undefined });
  },
  grpc: async (c) => {
    const tls = c.settings.targetTls;
    return new (await import('../export/grpc.ts')).GrpcExporter({
      ...collector(c),
      // Read now, at start, so a bad file stops the command with a ConfigError before any flow.
      credentials: tls && (await (await import('../export/tls.ts')).clientCredentialsFromFiles(tls)),
      maxMessageFlows: c.settings.grpcMessageMaxFlows,
      maxQueuedBatches: c.settings.buffersLength,
      onResult: c.onResult,
      onTransportError: (err) => {
        // A handshake failure says what to do in its message: one line, no stack.
        if (err instanceof TlsHandshakeError) c.logger.warn(`${err.message}; retrying with backoff`);
        else warnNetworkFailure(c.logger, err, 'gRPC collector', targetText(c), RETRY_TODO);
      },
    });
  },
  kafka: async (c) =>
    new (await import('../export/kafka.ts')).KafkaExporter({
      settings: (await import('../export/kafka-config.ts')).parseKafkaSettings(c.settings.kafkaSettings),
      maxQueuedBatches: c.settings.buffersLength,
      onResult: c.onResult,
      logger: c.logger,
      onTransportError: (err) =>
        warnNetworkFailure(
          c.logger,
          err,
          'Kafka brokers',
          c.settings.kafkaSettings.KAFKA_BROKERS ?? '',
          RETRY_TODO,
        ),
    }),
  'ipfix+udp': async (c) =>
    new (await import('../export/ipfix/udp.ts')).IpfixUdpExporter({
      ...collector(c),
      maxQueuedBatches: c.settings.buffersLength,
      onResult: c.onResult,
    }),
  'ipfix+tcp': async (c) =>
    new (await import('../export/ipfix/tcp.ts')).IpfixTcpExporter({
      ...collector(c),
      maxQueuedBatches: c.settings.buffersLength,
      onResult: c.onResult,
      onTransportError: (err) =>
        warnNetworkFailure(c.logger, err, 'IPFIX collector', targetText(c), RETRY_TODO),
    }),
  store: async (c) =>
    (await import('../store/store-exporter.ts')).StoreExporter.create({
      settings: c.settings.store,
      logger: c.logger,
      maxQueuedBatches: c.settings.buffersLength,
      onResult: c.onResult,
    }),
};

/** `nameOf` of a new reverse-DNS cache (--resolve). */
export function reverseNameOf(): (address: string) => string {
  const names = new ReverseNames();
  return (address) => names.nameOf(address);
}

/** What the logs of an unreachable collector tell the user. */
const RETRY_TODO = 'retrying with backoff; check that the collector runs and --target names it';

/** The collector as `host:port` for logs. */
function targetText(c: ExporterContext): string {
  const target = c.settings.target;
  return target ? `${target.host}:${target.port}` : '';
}

/** The collector of an export that needs one (loadConfig has checked it is set). */
function collector(c: ExporterContext): { host: string; port: number } {
  const target = c.settings.target;
  if (!target)
    throw new ConfigError('--target', '', 'the collector as host:port (or TARGET_HOST and TARGET_PORT)');
  return { host: target.host, port: target.port };
}

/**
 * One exporter per kind in `settings.export`, in that order. When one cannot be built (a bad
 * Kafka setting, say), those built before it are stopped before the error is passed on.
 */
export async function createExporters(
  settings: ExportSettings,
  logger: Logger,
  onResult: (result: BatchResult) => void,
  stdout: Writable = flowStdout(),
): Promise<FlowSink[]> {
  const exporters: FlowSink[] = [];
  const dropReasons = () => runningKernelDropReasons((message) => logger.warn(message));
  try {
    for (const kind of settings.export) {
      const factory = EXPORTER_FACTORIES[kind];
      if (!factory) {
        throw new NotSupportedError(
          `EXPORT=${kind}`,
          `this build of flowtap has no ${kind} exporter; use one of ${Object.keys(EXPORTER_FACTORIES).join(', ')}`,
        );
      }
      exporters.push(
        await factory({ settings, logger: logger.child({ exporter: kind }), onResult, stdout, dropReasons }),
      );
    }
  } catch (err) {
    await Promise.all(exporters.map((e) => e.stop(0)));
    throw err;
  }
  return exporters;
}

/**
 * An `onResult` that logs when an exporter starts failing (with the first error) and when it
 * recovers, instead of one line per failed batch; drops are logged the same way.
 */
export function logExportResults(logger: Logger): (result: BatchResult) => void {
  const failing = new Set<string>();
  return (result) => {
    const key = `${result.exporter}/${result.dropReason ?? 'send'}`;
    if (result.ok) {
      let recovered = false;
      for (const kind of ['send', 'queue-full', 'stopped']) {
        recovered = failing.delete(`${result.exporter}/${kind}`) || recovered;
      }
      if (recovered) logger.info({ exporter: result.exporter }, 'export recovered');
      return;
    }
    if (failing.has(key)) return;
    failing.add(key);
    if (result.dropReason) {
      logger.warn(
        { exporter: result.exporter, reason: result.dropReason, flows: result.flows },
        'exporter dropping batches (counted in flowtap_export_dropped_flows_total)',
      );
    } else {
      warnNetworkFailure(
        logger.child({ exporter: result.exporter }),
        result.error,
        `${result.exporter} export failing`,
        '',
        'its batches are counted as failed (flowtap_export_flows_total{result="failed"}) until it recovers',
      );
    }
  };
}

/**
 * Queries on the flow store of the `store` exporter among `exporters` (the web view's history),
 * or undefined when the store is off.
 */
export function storeQueries(exporters: readonly FlowSink[]): StoreQueries | undefined {
  const store = exporters.find((e) => e.name === 'store') as Partial<StoreExporter> | undefined;
  if (typeof store?.read !== 'function') return undefined;
  const exporter = store as StoreExporter;
  return (query) => exporter.read(query);
}
