/**
 * `flowtap run` (the default command): live capture on the selected interfaces, flows exported
 * as configured (JSON lines on stdout by default). SIGINT/SIGTERM stop it cleanly (exit 0, every
 * counted flow exported); a second signal exits at once.
 */
import type { Command } from 'commander';
import { SHARED_MAP_MIN_CPUS } from '../../ebpf/kernel-memory.ts';
import type { StoreQueries } from '../../store/store-reader.ts';
import { unhandledRejections } from '../../unhandled-rejections.ts';
import { DEFAULT_WEB_ADDRESS, parseWebAddress, type WebAddress } from '../../web/address.ts';
import type { Agent, AgentOptions } from '../agent.ts';
import {
  type CommandLineValues,
  DEFAULT_CACHE_MAX_FLOWS,
  DEFAULT_METRICS_ADDRESS,
  EXPORT_KINDS,
  loadConfig,
} from '../config.ts';
import { createExporters, logExportResults, storeQueries } from '../exporters.ts';
import { createLogger, type Logger } from '../logger.ts';
import { handleReloadSignal, handleStopSignals } from '../signals.ts';
import { onStdoutClosed } from '../stdout.ts';
import { filterFlag } from './option-parsers.ts';
import { addTargetTlsOptions } from './target-tls-options.ts';

/** What other features (the web view) add to a run. */
export interface RunExtension {
  /** Consumers of evicted batches besides the exporters; stopped with them. */
  observers?: AgentOptions['observers'];
  /**
   * Called once the agent runs (e.g. to serve its `health()`), with queries on the flow store
   * when the store is on.
   */
  onStarted?: (agent: Agent, store: StoreQueries | undefined) => Promise<void>;
}

/** Runs the agent with `flags` (and the environment) until it is stopped by a signal or fails. */
export async function runAgent(
  flags: CommandLineValues & { store?: boolean },
  extension: RunExtension = {},
): Promise<void> {
  const { store, ...settings } = flags;
  const config = loadConfig({
    flags: settings,
    env: process.env,
    stdoutIsTty: process.stdout.isTTY === true,
  });
  const logger = createLogger(config.logLevel);
  unhandledRejections.useLogger(logger);
  // The flow store is on for every run unless --no-store; a store that cannot be opened is logged
  // and counted by its exporter while capture goes on.
  const exportKinds =
    store === false || config.export.includes('store') ? config.export : [...config.export, 'store' as const];
  const exporters = await createExporters(
    { ...config, export: exportKinds },
    logger,
    logExportResults(logger),
  );
  // Signals are handled from before the start: one that comes while interfaces are being attached
  // acts as soon as the agent runs, instead of killing it with filters attached.
  let started: Agent | undefined;
  let stopRequested = false;
  let reloadRequested = false;
  const removeStopHandlers = handleStopSignals(async () => {
    stopRequested = true;
    await started?.stop();
  }, logger);
  const removeReloadHandler = handleReloadSignal(() => {
    if (started) reloadFilter(flags, started, logger);
    else reloadRequested = true;
  });
  // Imported here, not at the top: the agent brings libbpf, netlink and metrics with it, which
  // the other commands (`read`, `query`) would otherwise load and keep in memory for nothing.
  const { Agent } = await import('../agent.ts');
  const agent = await Agent.start({ config, logger, exporters, observers: extension.observers }).catch(
    async (err: unknown) => {
      removeStopHandlers();
      removeReloadHandler();
      // The agent never started, so nothing else owns the exporters' sockets and timers.
      await Promise.all(exporters.map((e) => e.stop(0)));
      throw err;
    },
  );
  started = agent;
  if (stopRequested) void agent.stop();
  else if (reloadRequested) reloadFilter(flags, agent, logger);
  const removeHandlers = () => {
    removeStopHandlers();
    removeReloadHandler();
  };
  // `flowtap run | head` ends like a stop signal once head exits: kernel maps drained, filters removed.
  const restoreStdoutClosed = onStdoutClosed(() => {
    logger.info('the reader of stdout went away: stopping');
    void agent.stop();
  });
  try {
    await extension.onStarted?.(agent, storeQueries(exporters)).catch(async (err: unknown) => {
      await agent.stop();
      throw err;
    });
    await agent.done();
  } finally {
    removeHandlers();
    restoreStdoutClosed();
  }
}

/**
 * SIGHUP: reads the settings again (the --config file may have changed) and puts the new filter
 * in use without detaching. A filter that does not compile is logged and the old one stays.
 * Other settings keep the values the agent started with.
 */
function reloadFilter(flags: CommandLineValues, agent: Agent, logger: Logger): void {
  try {
    const config = loadConfig({ flags, env: process.env, stdoutIsTty: process.stdout.isTTY === true });
    agent.setFilter(config.filter);
  } catch (err) {
    logger.error(
      { err: (err as Error).message },
      'SIGHUP: the new settings are not valid; keeping the filter in use',
    );
  }
}

/**
 * Serves the live web view of the running agent at `address`: wall-clock timeline, the agent's
 * health, and past windows of its flow store when it keeps one.
 */
function webViewExtension(address: WebAddress): RunExtension {
  return {
    onStarted: async (agent, store) => {
      const { startWebView } = await import('../../web/web-view.ts');
      const view = await startWebView({
        ...address,
        timeline: 'wall',
        health: () => agent.health(),
        store,
      });
      agent.addObserver(view);
      process.stderr.write(`flowtap: web view at ${view.url}\n`);
    },
  };
}

/** Registers `flowtap run` as the default command. */
export function registerRunCommand(program: Command): void {
  const command = program
    .command('run', { isDefault: true })
    .argument(
      '[expression...]',
      'count only packets matching this pcap-filter expression, e.g. tcp port 443 (see README) [FILTER]',
    )
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
    .option('--target <host:port>', 'collector for grpc and ipfix [TARGET_HOST + TARGET_PORT]');
  addTargetTlsOptions(command)
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
    .option(
      '--store-path <path>',
      'directory (or .duckdb file) of the flow store [STORE_PATH; /var/lib/flowtap as root, else $XDG_STATE_HOME/flowtap]',
    )
    .option('--no-store', 'do not keep flows in the flow store (kept by default, see flowtap query)')
    .option('--filter <expression>', 'pcap-filter expression, as the positional argument [FILTER; none]')
    .option(
      '--kernel-memory-max <size>',
      'kernel memory the flow maps and ring buffer may take, e.g. 512MiB [KERNEL_MEMORY_MAX; 256MiB]',
    )
    .option(
      '--kernel-map-kind <kind>',
      `kernel flow map: auto (per-CPU below ${SHARED_MAP_MIN_CPUS} CPUs, shared from ${SHARED_MAP_MIN_CPUS}), percpu or shared [KERNEL_MAP_KIND; auto]`,
    )
    .option('--config <file>', 'YAML or JSON file of settings, keys as the variables above or camelCase')
    .addHelpText(
      'after',
      '\nPrecedence: flags > environment variables > --config file > defaults. Other settings: ' +
        'GRPC_MESSAGE_MAX_FLOWS (10000), FLOWS_TARGET_HOST/FLOWS_TARGET_PORT (older names), KAFKA_* (EXPORT=kafka), ' +
        'STORE_RETENTION (7d), STORE_MAX_BYTES (0: no limit), ' +
        'FLOW_FILTER_RULES (JSON/YAML filter rules). SIGHUP re-reads the --config file and replaces the filter.',
    )
    .action(
      async (expression: string[], opts: CommandLineValues & { web?: string | boolean; store?: boolean }) => {
        const { web, ...flags } = opts;
        flags.filter = filterFlag(expression, flags.filter);
        await runAgent(flags, web === undefined ? {} : webViewExtension(parseWebAddress(web)));
      },
    );
}
