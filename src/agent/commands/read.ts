/**
 * `flowtap read FILE|-`: reads a pcap or pcapng capture (a file, or a pipe such as
 * `tcpdump -w - | flowtap read -`), counts every packet into flows with the kernel program's
 * meaning (docs/flow-key.md), accounts them on the packets' own times and prints each evicted
 * flow as a JSON line. A summary (packets read, skipped by reason, flows) goes to stderr at the
 * end, also when a damaged capture ends the read with exit 1 after the flows before the damage.
 */
import { createReadStream } from 'node:fs';
import type { Command } from 'commander';
import { Accounter } from '../../account/accounter.ts';
import { CaptureDecoder } from '../../capture/pcap/capture-decoder.ts';
import { type LocalHosts, parseLocalHosts } from '../../capture/pcap/direction.ts';
import { SKIP_REASON_NAMES } from '../../capture/pcap/packet-sink.ts';
import { readCapture } from '../../capture/pcap/read-capture.ts';
import { ExportError } from '../../errors.ts';
import type { FlowSink } from '../../sink/flow-sink.ts';
import { unhandledRejections } from '../../unhandled-rejections.ts';
import { DEFAULT_WEB_ADDRESS, parseWebAddress } from '../../web/address.ts';
import type { HealthSnapshot } from '../../web/health.ts';
import { serveUntilSignal, startWebView } from '../../web/web-view.ts';
import { type CommandLineValues, loadConfig } from '../config.ts';
import { createExporters, logExportResults } from '../exporters.ts';
import { createLogger } from '../logger.ts';
import { asInputError, positiveDurationOption, positiveIntOption } from './option-parsers.ts';

/** Options of a {@link CaptureRead}. */
export interface ReadOptions {
  /** Flows cached before the whole cache is evicted. */
  cacheMaxFlows: number;
  /** Active timeout on the packets' times. */
  cacheActiveTimeoutMs: number;
  /** Sources that make a packet EGRESS; empty: the capture's recorded direction, else INGRESS. */
  localHosts: LocalHosts;
}

const READ_CHUNK_BYTES = 1 << 20;
const EVICT_BUFFER_LEN = 4;
/** How long exporters may take, by default, after the capture ends, to deliver what they hold. */
const EXPORT_FLUSH_TIMEOUT_MS = 30_000;
/** Rows a batch starts with: about the packets of one 1 MiB chunk of a snapped capture, so it rarely grows. */
const BATCH_ROWS = 16_384;

/**
 * One read of a capture into exporters. Its counters fill in as the read goes, so the summary
 * can still be reported when a damaged capture makes `run` reject.
 */
export class CaptureRead {
  /** The capture decoder; `decoder.stats` holds the packet counts. */
  readonly decoder: CaptureDecoder;
  /** Flows written so far. */
  flows = 0;
  readonly #options: ReadOptions;

  constructor(options: ReadOptions) {
    this.#options = options;
    this.decoder = new CaptureDecoder({ localHosts: options.localHosts, initialRows: BATCH_ROWS });
  }

  /**
   * Reads the capture `input`, accounts its packets into flows and hands every evicted batch to
   * each exporter. A file can wait, so the read pauses while an exporter's queue is full
   * instead of dropping flows.
   */
  async run(input: AsyncIterable<Buffer | string>, exporters: readonly FlowSink[]): Promise<void> {
    const accounter = new Accounter({
      maxEntries: this.#options.cacheMaxFlows,
      evictBufferLen: EVICT_BUFFER_LEN,
      evictTimeoutMs: this.#options.cacheActiveTimeoutMs,
      activeTimeoutBy: 'record-time',
    });
    for await (const batch of accounter.account(readCapture(input, this.decoder))) {
      for (const exporter of exporters) await exporter.whenReady?.();
      for (const exporter of exporters) exporter.export(batch);
      this.flows += batch.count;
    }
  }

  /** The one-line summary: format, packets read, counted, skipped by reason, flows, and export losses. */
  summary(exporters: readonly FlowSink[] = []): string {
    const s = this.decoder.stats;
    let line = `flowtap read: ${s.format || 'capture'}, ${s.packets} packets read, ${s.counted} counted into ${this.flows} flows`;
    const skipped = s.skippedTotal;
    if (skipped > 0) {
      const reasons: string[] = [];
      s.skipped.forEach((n, reason) => {
        if (n > 0) reasons.push(`${n} ${SKIP_REASON_NAMES[reason]}`);
      });
      line += `, ${skipped} skipped (${reasons.join(', ')})`;
    }
    if (s.unsupportedLinkTypes.size > 0)
      line += `; link types not read: ${[...s.unsupportedLinkTypes].join(', ')}`;
    if (s.truncatedEndOffset >= 0)
      line += `; the input ends inside a record at byte offset ${s.truncatedEndOffset}`;
    if (s.otherBlocks > 0) line += `; ${s.otherBlocks} non-packet blocks passed over`;
    for (const e of exporters) {
      const lost = e.stats.flowsFailed + e.stats.flowsDropped['queue-full'] + e.stats.flowsDropped.stopped;
      if (lost > 0) line += `; ${lost} flows not delivered by ${e.name}`;
    }
    return `${line}\n`;
  }
}

/** Registers `flowtap read`. */
export function registerReadCommand(program: Command): void {
  program
    .command('read')
    .description(
      'read a pcap or pcapng capture from FILE (or - for stdin) and export its flows (JSON lines by default)',
    )
    .argument('<file>', 'capture file (pcap or pcapng), or - for standard input')
    .option(
      '--local-net <cidrs>',
      'comma-separated local networks: packets from them are EGRESS, others INGRESS (e.g. 10.0.0.0/8,fd00::/8)',
    )
    .option('--local-mac <macs>', 'comma-separated local MAC addresses: packets from them are EGRESS')
    .option(
      '--cache-max-flows <n>',
      'flows cached before the cache is evicted',
      positiveIntOption('--cache-max-flows'),
      100_000,
    )
    .option(
      '--cache-active-timeout <duration>',
      'active timeout on the packets’ times (Go duration)',
      positiveDurationOption('--cache-active-timeout'),
      5_000,
    )
    .option(
      '-e, --export <kinds>',
      'where flows go: json, grpc, kafka, ipfix+udp, ipfix+tcp (comma-separated)',
    )
    .option('--target <host:port>', 'collector of the grpc and ipfix exports')
    .option('--output <format>', 'stdout form of the json export: json or table')
    .option('--log-level <level>', 'log level of the messages on stderr')
    .option(
      '--export-flush-timeout <duration>',
      'how long exporters may take after the capture ends to deliver what they hold',
      positiveDurationOption('--export-flush-timeout'),
      EXPORT_FLUSH_TIMEOUT_MS,
    )
    .option(
      '--web [addr]',
      `also serve the web view of the capture's timeline at addr (host:port or port), until SIGINT/SIGTERM [off, ${DEFAULT_WEB_ADDRESS.host}:${DEFAULT_WEB_ADDRESS.port} when given alone]`,
    )
    .addHelpText(
      'after',
      '\nWithout --local-net/--local-mac a packet keeps the direction the capture recorded (Linux\n' +
        'cooked captures, pcapng epb_flags) and is INGRESS when it recorded none.',
    )
    .action(
      async (
        file: string,
        opts: {
          localNet?: string;
          localMac?: string;
          cacheMaxFlows: number;
          cacheActiveTimeout: number;
          web?: string | boolean;
          export?: string;
          target?: string;
          output?: string;
          logLevel?: string;
          exportFlushTimeout: number;
        },
      ) => {
        const localHosts = parseLocalHosts(opts.localNet, opts.localMac);
        const flags: CommandLineValues = {
          export: opts.export,
          target: opts.target,
          output: opts.output,
          logLevel: opts.logLevel,
        };
        const config = loadConfig({ flags, env: process.env, stdoutIsTty: process.stdout.isTTY === true });
        const logger = createLogger(config.logLevel);
        unhandledRejections.useLogger(logger);
        const exporters = await createExporters(config, logger, logExportResults(logger));
        const web =
          opts.web === undefined
            ? undefined
            : await startWebView({
                ...parseWebAddress(opts.web),
                timeline: 'records',
                health: (): HealthSnapshot => ({
                  packetsSeen: read.decoder.stats.packets,
                  parseErrors: read.decoder.stats.skippedTotal,
                }),
              });
        if (web) process.stderr.write(`flowtap read: web view at ${web.url}\n`);
        const input =
          file === '-' ? process.stdin : createReadStream(file, { highWaterMark: READ_CHUNK_BYTES });
        const read = new CaptureRead({
          cacheMaxFlows: opts.cacheMaxFlows,
          cacheActiveTimeoutMs: opts.cacheActiveTimeout,
          localHosts,
        });
        try {
          await read.run(input, web ? [...exporters, web] : exporters);
        } catch (err) {
          throw asInputError(err, file);
        } finally {
          await Promise.all(exporters.map((e) => e.stop(opts.exportFlushTimeout)));
          process.stderr.write(read.summary(exporters));
          if (web) {
            process.stderr.write('flowtap read: the web view keeps serving until SIGINT or SIGTERM\n');
            await serveUntilSignal(web);
          }
        }
        for (const e of exporters) {
          const undelivered =
            e.stats.flowsFailed + e.stats.flowsDropped['queue-full'] + e.stats.flowsDropped.stopped;
          if (undelivered > 0) {
            throw new ExportError(
              e.name,
              `${undelivered} flows were not delivered; check that the collector is reachable`,
            );
          }
        }
      },
    );
}
