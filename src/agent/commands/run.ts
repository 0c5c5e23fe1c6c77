/**
 * `flowtap run` (the default command): live capture on the selected interfaces, flows exported
 * as configured (JSON lines on stdout by default). SIGINT/SIGTERM stop it cleanly (exit 0, every
 * counted flow exported); a second signal exits at once.
 */
import type { Command } from 'commander';
import { DEFAULT_WEB_ADDRESS, parseWebAddress, type WebAddress } from '../../web/address.ts';
import { startWebView } from '../../web/web-view.ts';
import { Agent, type AgentOptions } from '../agent.ts';
import {
  type CommandLineValues,
  DEFAULT_CACHE_MAX_FLOWS,
  DEFAULT_METRICS_ADDRESS,
  EXPORT_KINDS,
  loadConfig,
} from '../config.ts';
import { createExporters, logExportResults } from '../exporters.ts';
import { createLogger } from '../logger.ts';
import { handleStopSignals } from '../signals.ts';
import { onStdoutClosed } from '../stdout.ts';

/** What other features (the web view) add to a run. */
export interface RunExtension {
  /** Consumers of evicted batches besides the exporters; stopped with them. */
  observers?: AgentOptions['observers'];
  /** Called once the agent runs (e.g. to serve its `health()`). */
  onStarted?: (agent: Agent) => Promise<void>;
}

/** Runs the agent with `flags` (and the environment) until it is stopped by a signal or fails. */
export async function runAgent(flags: CommandLineValues, extension: RunExtension = {}): Promise<void> {
  const config = loadConfig({ flags, env: process.env, stdoutIsTty: process.stdout.isTTY === true });
  const logger = createLogger(config.logLevel);
  const exporters = await createExporters(config, logger, logExportResults(logger));
  const agent = await Agent.start({ config, logger, exporters, observers: extension.observers }).catch(
    async (err: unknown) => {
      // The agent never started, so nothing else owns the exporters' sockets and timers.
      await Promise.all(exporters.map((e) => e.stop(0)));
      throw err;
    },
  );
  const removeHandlers = handleStopSignals(() => agent.stop(), logger);
  // `flowtap run | head` ends like a stop signal once head exits: kernel maps drained, filters removed.
  const restoreStdoutClosed = onStdoutClosed(() => {
    logger.info('the reader of stdout went away: stopping');
    void agent.stop();
  });
  try {
    await extension.onStarted?.(agent).catch(async (err: unknown) => {
      await agent.stop();
      throw err;
    });
    await agent.done();
  } finally {
    removeHandlers();
    restoreStdoutClosed();
  }
}

/** Serves the live web view of the running agent at `address`: wall-clock timeline, the agent's health. */
function webViewExtension(address: WebAddress): RunExtension {
  return {
    onStarted: async (agent) => {
      const view = await startWebView({ ...address, timeline: 'wall', health: () => agent.health() });
      agent.addObserver(view);
      process.stderr.write(`flowtap: web view at ${view.url}\n`);
    },
  };
}

/** Registers `flowtap run` as the default command. */
export function registerRunCommand(program: Command): void {
  program
    .command('run', { isDefault: true })
    .description(
      'capture flows live with eBPF on the selected interfaces and export them (the default command)',
    )
    .option(
      '-i, --interfaces <list>',
      'interfaces to attach to, names or /regex/, comma-separated [INTERFACES; all]',
    )
    .option(
      '--exclude-interfaces <list>',
      'interfaces never attached to; wins over --interfaces [EXCLUDE_INTERFACES; lo]',
    )
    .option(
      '-e, --export <kinds>',
      `where flows go: ${EXPORT_KINDS.join(', ')}, comma-separated [EXPORT; json]`,
    )
    .option('--target <host:port>', 'collector for grpc and ipfix [TARGET_HOST + TARGET_PORT]')
    .option('--sampling <n>', 'count one packet in n (0 or 1: all) [SAMPLING; 1]')
    .option(
      '--cache-max-flows <n>',
      `flows cached before the cache is evicted [CACHE_MAX_FLOWS; ${DEFAULT_CACHE_MAX_FLOWS}]`,
    )
    .option(
      '--cache-active-timeout <duration>',
      'flows are evicted this often (Go duration) [CACHE_ACTIVE_TIMEOUT; 5s]',
    )
    .option('--direction <dir>', 'packets counted: ingress, egress or both [DIRECTION; both]')
    .option(
      '--listen-interfaces <mode>',
      'interface discovery: watch (link events) or poll [LISTEN_INTERFACES; watch]',
    )
    .option('--listen-poll-period <duration>', 'listing period in poll mode [LISTEN_POLL_PERIOD; 10s]')
    .option('--buffers-length <n>', 'batches each stage may queue [BUFFERS_LENGTH; 50]')
    .option(
      '--log-level <level>',
      'trace, debug, info, warn, error, fatal or silent; logs go to stderr [LOG_LEVEL; info]',
    )
    .option(
      '--metrics [addr]',
      `serve Prometheus /metrics at addr (host:port or port) [METRICS; off, ${DEFAULT_METRICS_ADDRESS.host}:${DEFAULT_METRICS_ADDRESS.port} when given alone]`,
    )
    .option(
      '--web [addr]',
      `serve the live web view at addr (host:port or port) [off, ${DEFAULT_WEB_ADDRESS.host}:${DEFAULT_WEB_ADDRESS.port} when given alone]`,
    )
    .option(
      '--output <format>',
      'the json export on stdout as json lines or a table [OUTPUT; table on a terminal]',
    )
    .option('--config <file>', 'YAML or JSON file of settings, keys as the variables above or camelCase')
    .addHelpText(
      'after',
      '\nPrecedence: flags > environment variables > --config file > defaults. Other settings: ' +
        'GRPC_MESSAGE_MAX_FLOWS (10000), FLOWS_TARGET_HOST/FLOWS_TARGET_PORT (older names), KAFKA_* (EXPORT=kafka).',
    )
    .action(async (opts: CommandLineValues & { web?: string | boolean }) => {
      const { web, ...flags } = opts;
      await runAgent(flags, web === undefined ? {} : webViewExtension(parseWebAddress(web)));
    });
}
