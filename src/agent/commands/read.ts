/**
 * `flowtap read FILE...|- [EXPRESSION]`: reads a pcap or pcapng capture (files, gzipped or not,
 * shell patterns such as `'cap-*.pcap.gz'` read in time order as one capture, or a pipe such as
 * `tcpdump -w - | flowtap read -`), counts every packet the filter accepts into flows with the
 * kernel program's meaning (docs/flow-key.md), accounts them on the packets' own times and prints
 * each evicted flow as a JSON line. A summary (packets read, skipped by reason, flows) goes to
 * stderr at the end, also after the error when a damaged capture ends the read with exit 1 after
 * the flows before the damage (exit 3 when the capture merely ends inside a packet).
 *
 * This module wires the parts: flags (read-options.ts), inputs (capture-inputs.ts), the data path
 * (read-pipeline.ts), the progress line (read-progress.ts), the summary (read-summary.ts), and the
 * exporters and web view it feeds.
 */
import type { Command } from 'commander';
import { CaptureInputs, partitionReadArguments } from '../../capture/pcap/capture-inputs.ts';
import { ExportError, type FlowtapError, TruncatedCaptureError } from '../../errors.ts';
import { describeFilter } from '../../filter/build.ts';
import { formatIp } from '../../model/ip.ts';
import type { FlowSink } from '../../sink/flow-sink.ts';
import { unhandledRejections } from '../../unhandled-rejections.ts';
import { CAPTURE_FILE_WINDOW } from '../../web/aggregate.ts';
import type { HealthSnapshot } from '../../web/health.ts';
import { resolveAgentIp } from '../agent-ip.ts';
import { createExporters, logExportResults, storeQueries } from '../exporters.ts';
import { createLogger } from '../logger.ts';
import { withEpilogue } from './error-epilogue.ts';
import { asInputError } from './option-parsers.ts';
import { addReadOptions, type ReadFlags, type ReadSettings, readSettings } from './read-options.ts';
import { CaptureRead, READ_EXPORT_QUEUE_BATCHES } from './read-pipeline.ts';
import { ReadProgress, wantsProgress } from './read-progress.ts';
import { readSummary, undeliveredFlows } from './read-summary.ts';

/** Registers `flowtap read`. */
export function registerReadCommand(program: Command): void {
  addReadOptions(
    program
      .command('read')
      .description(
        'read a pcap or pcapng capture from FILEs (or - for stdin) and export its flows (JSON lines by default)',
      )
      .argument(
        '<files...>',
        'capture files (pcap or pcapng, gzipped or not) or quoted patterns (cap-*.pcap.gz) read in time order as one capture, or - for standard input; the words after the last file are a pcap-filter expression [FILTER]',
      ),
  )
    .addHelpText(
      'after',
      '\nWithout --local-net/--local-mac a packet keeps the direction the capture recorded (Linux\n' +
        'cooked captures, pcapng epb_flags) and is INGRESS when it recorded none.',
    )
    .action(async (args: string[], flags: ReadFlags) => {
      // The words after the last input are the filter, checked before any input is opened.
      const { files, rest } = await partitionReadArguments(args);
      await readCaptureFiles(
        readSettings(files, rest, flags, { env: process.env, stdoutIsTty: process.stdout.isTTY === true }),
      );
    });
}

/**
 * Reads the capture into the configured exporters (and the web view), prints the summary, and
 * throws ExportError when an exporter did not deliver every flow, InputError for an unreadable file.
 */
async function readCaptureFiles(settings: ReadSettings): Promise<void> {
  const inputs = await CaptureInputs.open([...settings.files]).catch((err: unknown) => {
    throw asInputError(err, settings.files.join(' '));
  });
  const logger = createLogger(settings.config.logLevel);
  unhandledRejections.useLogger(logger);
  const exporters = await createExporters(
    { ...settings.config, buffersLength: Math.min(settings.config.buffersLength, READ_EXPORT_QUEUE_BATCHES) },
    logger,
    logExportResults(logger),
  );
  // A file can be read again later: a store that cannot be opened ends the read before it starts.
  const storeError = exporters.map((e) => (e as { openError?: Error }).openError).find((e) => e);
  if (storeError) {
    await Promise.all(exporters.map((e) => e.stop(0)));
    throw storeError;
  }
  const agentIp = await resolveAgentIp(settings.config.agentIp, logger);
  const read = new CaptureRead({ ...settings.read, agentIp });
  // The web view's modules are loaded only when it is asked for: a plain read stays small.
  const webView = settings.web ? await import('../../web/web-view.ts') : undefined;
  const web =
    settings.web &&
    (await webView?.startWebView({
      ...settings.web,
      timeline: 'records',
      aggregate: CAPTURE_FILE_WINDOW,
      store: storeQueries(exporters),
      health: (): HealthSnapshot => ({
        packetsSeen: read.decoder.stats.packets,
        parseErrors: read.decoder.stats.skippedTotal,
        filter: describeFilter(settings.config.filter),
        agentIp: formatIp(agentIp, 0, 0),
        // A capture shows no kernel drops; its retransmissions are what the TCP analysis found.
        tcpHealth: { dropPackets: 0, retransSegments: read.decoder.stats.tcpHealth.retransmittedSegments },
      }),
    }));
  if (web) process.stderr.write(`flowtap read: web view at ${web.url}\n`);
  const progress = wantsProgress(process.stderr, settings.quiet)
    ? new ReadProgress(process.stderr, () => ({
        bytesRead: inputs.bytesRead,
        totalBytes: inputs.totalBytes,
        packets: read.decoder.stats.packets,
        flows: read.flows + read.cachedFlows,
      }))
    : undefined;
  progress?.start();
  let failure: unknown;
  try {
    await read.run(inputs, web ? [...exporters, web] : exporters);
  } catch (err) {
    failure = asInputError(err, inputs.currentPath || settings.files.join(' '));
  } finally {
    progress?.stop();
    await Promise.all(exporters.map((e) => e.stop(settings.exportFlushTimeoutMs)));
  }
  failure ??= readFailure(read, exporters);
  const summary = readSummary(read.decoder.stats, read.flows, exporters, read.dnsStats);
  // The summary is the last word: after the error's message when the read failed.
  if (failure === undefined || web) process.stderr.write(summary);
  if (web) {
    process.stderr.write('flowtap read: the web view keeps serving until SIGINT or SIGTERM\n');
    await webView?.serveUntilSignal(web);
  }
  if (failure !== undefined) throw web ? failure : withEpilogue(failure, summary);
}

/**
 * Why a read that went to the end still fails: an exporter that did not deliver every flow
 * (ExportError), or a capture cut short inside a packet (TruncatedCaptureError); undefined when
 * neither.
 */
function readFailure(read: CaptureRead, exporters: readonly FlowSink[]): FlowtapError | undefined {
  for (const e of exporters) {
    const undelivered = undeliveredFlows(e);
    if (undelivered > 0) {
      return new ExportError(
        e.name,
        `${undelivered} flows were not delivered; check that the collector is reachable`,
      );
    }
  }
  const stats = read.decoder.stats;
  if (stats.truncatedEndOffset >= 0)
    return new TruncatedCaptureError(stats.truncatedEndOffset, stats.format || 'capture');
  return undefined;
}
