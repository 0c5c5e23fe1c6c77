/**
 * `flowtap read FILE|-`: reads a pcap or pcapng capture (a file, or a pipe such as
 * `tcpdump -w - | flowtap read -`), counts every packet into flows with the kernel program's
 * meaning (docs/flow-key.md), accounts them on the packets' own times and prints each evicted
 * flow as a JSON line. A summary (packets read, skipped by reason, flows) goes to stderr at the
 * end, also when a damaged capture ends the read with exit 1 after the flows before the damage.
 *
 * This module wires the parts: flags (read-options.ts), input (open-input.ts), the data path
 * (read-pipeline.ts), the summary (read-summary.ts), and the exporters and web view it feeds.
 */
import type { Command } from 'commander';
import { ExportError } from '../../errors.ts';
import { unhandledRejections } from '../../unhandled-rejections.ts';
import type { HealthSnapshot } from '../../web/health.ts';
import { serveUntilSignal, startWebView } from '../../web/web-view.ts';
import { createExporters, logExportResults } from '../exporters.ts';
import { createLogger } from '../logger.ts';
import { openInput } from './open-input.ts';
import { asInputError } from './option-parsers.ts';
import { addReadOptions, type ReadFlags, type ReadSettings, readSettings } from './read-options.ts';
import { CaptureRead } from './read-pipeline.ts';
import { readSummary, undeliveredFlows } from './read-summary.ts';

/** Registers `flowtap read`. */
export function registerReadCommand(program: Command): void {
  addReadOptions(
    program
      .command('read')
      .description(
        'read a pcap or pcapng capture from FILE (or - for stdin) and export its flows (JSON lines by default)',
      )
      .argument('<file>', 'capture file (pcap or pcapng), or - for standard input'),
  )
    .addHelpText(
      'after',
      '\nWithout --local-net/--local-mac a packet keeps the direction the capture recorded (Linux\n' +
        'cooked captures, pcapng epb_flags) and is INGRESS when it recorded none.',
    )
    .action(async (file: string, flags: ReadFlags) => {
      await readCaptureFile(
        readSettings(file, flags, { env: process.env, stdoutIsTty: process.stdout.isTTY === true }),
      );
    });
}

/**
 * Reads the capture into the configured exporters (and the web view), prints the summary, and
 * throws ExportError when an exporter did not deliver every flow, InputError for an unreadable file.
 */
async function readCaptureFile(settings: ReadSettings): Promise<void> {
  const logger = createLogger(settings.config.logLevel);
  unhandledRejections.useLogger(logger);
  const exporters = await createExporters(settings.config, logger, logExportResults(logger));
  const read = new CaptureRead(settings.read);
  const web =
    settings.web &&
    (await startWebView({
      ...settings.web,
      timeline: 'records',
      health: (): HealthSnapshot => ({
        packetsSeen: read.decoder.stats.packets,
        parseErrors: read.decoder.stats.skippedTotal,
      }),
    }));
  if (web) process.stderr.write(`flowtap read: web view at ${web.url}\n`);
  const input = openInput(settings.file);
  try {
    await read.run(input, web ? [...exporters, web] : exporters);
  } catch (err) {
    throw asInputError(err, settings.file);
  } finally {
    await Promise.all(exporters.map((e) => e.stop(settings.exportFlushTimeoutMs)));
    process.stderr.write(readSummary(read.decoder.stats, read.flows, exporters));
    if (web) {
      process.stderr.write('flowtap read: the web view keeps serving until SIGINT or SIGTERM\n');
      await serveUntilSignal(web);
    }
  }
  for (const e of exporters) {
    const undelivered = undeliveredFlows(e);
    if (undelivered > 0) {
      throw new ExportError(
        e.name,
        `${undelivered} flows were not delivered; check that the collector is reachable`,
      );
    }
  }
}
