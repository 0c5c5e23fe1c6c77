/**
 * `flowtap run` (the default command): live capture on the selected interfaces, flows exported
 * as configured (JSON lines on stdout by default). SIGINT/SIGTERM stop it cleanly (exit 0, every
 * counted flow exported); a second signal exits at once unless it follows the first within a short
 * grace (src/agent/signals.ts). `--duration` and `--count` end the run the same way.
 */
import type { Command } from 'commander';
import { SHARED_MAP_MIN_CPUS } from '../../ebpf/kernel-memory.ts';
import type { StoreQueries } from '../../store/store-reader.ts';
import { unhandledRejections } from '../../unhandled-rejections.ts';
import { DEFAULT_WEB_ADDRESS, parseWebAddress, type WebAddress } from '../../web/address.ts';
import type { Agent, AgentOptions } from '../agent.ts';
import { resolveAgentIp } from '../agent-ip.ts';
import {
  type CommandLineValues,
  DEFAULT_CACHE_MAX_FLOWS,
  DEFAULT_HEALTH,
  DEFAULT_METRICS_ADDRESS,
  EXPORT_KINDS,
  loadConfig,
} from '../config.ts';
import { createExporters, logExportResults, reverseNameOf, storeQueries } from '../exporters.ts';
import { createLogger, type Logger } from '../logger.ts';
import type { RunBounds } from '../run-limit.ts';
import { handleReloadSignal, handleStopSignals } from '../signals.ts';
import { onStdoutClosed } from '../stdout.ts';
import { LiveView } from '../terminal/live-view.ts';
import { filterFlag, positiveDurationOption, positiveIntOption } from './option-parsers.ts';
import { addTargetTlsOptions } from './target-tls-options.ts';

/**
 * The live view on this process's terminal: stdout to draw on, stdin for keys when it is a
 * terminal too, colours unless the terminal has none or NO_COLOR is set.
 */
function liveTerminalView(onQuit: () => void, nameOf?: (address: string) => string): LiveView {
  return new LiveView({
    out: process.stdout,
    keys: process.stdin.isTTY ? process.stdin : undefined,
    colour: process.stdout.hasColors?.() === true,
    stderr: process.stderr,
    onQuit,
    nameOf,
  });
}

/** What a run gives its extensions once the agent runs. */
export interface RunContext {
  /** Queries on the flow store when the store is on. */
  store: StoreQueries | undefined;
  logger: Logger;
  /** Names of addresses when --resolve is on. */
  nameOf: ((address: string) => string) | undefined;
}

/** What other features (the web view) add to a run. */
export interface RunExtension {
  /** Ends the run after a duration or a count of flows (`--duration`, `--count`). */
  bounds?: RunBounds;
  /** Consumers of evicted batches besides the exporters; stopped with them. */
  observers?: AgentOptions['observers'];
  /** Called once the agent runs (e.g. to serve its `health()`), with what the run offers. */
  onStarted?: (agent: Agent, context: RunContext) => Promise<void>;
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
    stderrIsTty: process.stderr.isTTY === true,
    terminalOutput: 'live',
  });
  // On a terminal the json export is the live view, and the logs go to its pane.
  let stopAgent: () => void = () => {};
  const live =
    config.output === 'live' && config.export.includes('json')
      ? liveTerminalView(() => stopAgent(), config.resolve ? reverseNameOf() : undefined)
      : undefined;
  const logger = createLogger(config.logLevel, config.logFormat, live?.logStream);
  unhandledRejections.useLogger(logger);
  // The flow store is on for every run unless --no-store; a store that cannot be opened is logged
  // and counted by its exporter while capture goes on.
  const withStore =
    store === false || config.export.includes('store') ? config.export : [...config.export, 'store' as const];
  const exportKinds = live ? withStore.filter((kind) => kind !== 'json') : withStore;
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
  const agentIp = await resolveAgentIp(config.agentIp, logger);
  // Imported here, not at the top: the agent brings libbpf, netlink and metrics with it, which
  // the other commands (`read`, `query`) would otherwise load and keep in memory for nothing.
  const { Agent } = await import('../agent.ts');
  const agent = await Agent.start({
    config,
    logger,
    exporters: live ? [live, ...exporters] : exporters,
    observers: extension.observers,
    bounds: extension.bounds,
    agentIp,
  }).catch(async (err: unknown) => {
    removeStopHandlers();
    removeReloadHandler();
    // The agent never started, so nothing else owns the exporters' sockets and timers.
    await Promise.all([...exporters, ...(live ? [live] : [])].map((e) => e.stop(0)));
    throw err;
  });
  started = agent;
  stopAgent = () => void agent.stop();
  live?.start(() => agent.health());
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
    const context = {
      store: storeQueries(exporters),
      logger,
      nameOf: config.resolve ? reverseNameOf() : undefined,
    };
    await extension.onStarted?.(agent, context).catch(async (err: unknown) => {
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
function onOff(enabled: boolean): string {
  return enabled ? 'on' : 'off';
}

function webViewExtension(address: WebAddress): RunExtension {
  return {
    onStarted: async (agent, { store, logger, nameOf }) => {
      const { startWebView } = await import('../../web/web-view.ts');
      const { runningKernelDropReasons } = await import('../../ebpf/drop-reasons.ts');
      const view = await startWebView({
        ...address,
        timeline: 'wall',
        health: () => agent.health(),
        store,
        nameOf,
        dropReasons: () => runningKernelDropReasons((message) => logger.warn(message)),
      });
      agent.addObserver(view);
      // Through the logger: on a terminal the live view owns the screen and shows it in its pane.
      logger.info({ url: view.url }, `web view at ${view.url}`);
    },
  };
}

/** Flags of `flowtap run` that are not agent settings (no environment variable or file key). */
interface RunOnlyFlags {
  web?: string | boolean;
  store?: boolean;
  /** --duration in milliseconds. */
  duration?: number;
  /** --count of flows. */
  count?: number;
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
      'the json export on stdout: live (a view refreshed in place; keys p, s, q), table (one per eviction) or json lines [OUTPUT; live on a terminal, else json]',
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
    .option(
      '--deduper <mode>',
      'firstCome: a packet crossing several interfaces is one flow listing them all; none: one flow per interface [DEDUPER; firstCome]',
    )
    .option(
      '--tunnels',
      'key VXLAN, Geneve, GRE and IP-in-IP packets by the packet inside, with the tunnel on the flow [ENABLE_TUNNELS; off]',
    )
    .option(
      '--agent-ip <address>',
      "address written into every flow as the agent's [AGENT_IP; the default route's source address, AGENT_IP_TYPE any, ipv4 or ipv6]",
    )
    .option(
      '--bidirectional',
      'both directions of a conversation in one record with reverse counters (RFC 5103) [BIDIRECTIONAL; off]',
    )
    .option(
      '--rtt',
      `smoothed RTT and handshake time per TCP flow [ENABLE_RTT; ${onOff(DEFAULT_HEALTH.rtt)}]`,
    )
    .option('--no-rtt', 'no RTT per TCP flow')
    .option(
      '--tcp-retrans',
      `retransmitted segments and bytes per TCP flow [ENABLE_TCP_RETRANS; ${onOff(DEFAULT_HEALTH.retrans)}]`,
    )
    .option('--no-tcp-retrans', 'no retransmissions per flow')
    .option(
      '--pkt-drops',
      `packets the kernel dropped per flow, with the latest reason [ENABLE_PKT_DROPS; ${onOff(DEFAULT_HEALTH.drops)}]`,
    )
    .option('--no-pkt-drops', 'no drops per flow')
    .option(
      '--health-hooks <mode>',
      'how RTT, retransmissions and drops hook the kernel: auto (fentry or BTF tracepoints, falling back) or tracepoint (raw tracepoints only) [HEALTH_HOOKS; auto]',
    )
    .option(
      '--dns-tracking',
      'match DNS queries to their responses in the kernel: id, flags, response code, name and latency on each flow [ENABLE_DNS_TRACKING; off]',
    )
    .option(
      '--dns-tracking-port <ports>',
      'ports whose UDP and TCP packets are DNS, comma-separated (53,5353 adds mDNS) [DNS_TRACKING_PORT; 53]',
    )
    .option(
      '--resolve',
      'show reverse DNS names of addresses in the live view and the table (cached, at most 8 lookups at once) [RESOLVE; off]',
    )
    .option('--config <file>', 'YAML or JSON file of settings, keys as the variables above or camelCase')
    .option(
      '--duration <duration>',
      'stop after this long (Go duration, e.g. 30s), flushing every counted flow [until a signal]',
      positiveDurationOption('--duration'),
    )
    .option(
      '--count <n>',
      'stop once n flows were exported, flushing every counted flow (so at least n) [until a signal]',
      positiveIntOption('--count'),
    )
    .addHelpText(
      'after',
      '\nPrecedence: flags > environment variables > --config file > defaults. Other settings: ' +
        'GRPC_MESSAGE_MAX_FLOWS (10000), FLOWS_TARGET_HOST/FLOWS_TARGET_PORT (older names), KAFKA_* (EXPORT=kafka), ' +
        'STORE_RETENTION (7d), STORE_MAX_BYTES (0: no limit), ' +
        'FLOW_FILTER_RULES (JSON/YAML filter rules), LOG_FORMAT (text on a terminal, else json). SIGHUP re-reads the --config file and replaces the filter.',
    )
    .action(async (expression: string[], opts: CommandLineValues & RunOnlyFlags) => {
      const { web, duration, count, ...flags } = opts;
      flags.filter = filterFlag(expression, flags.filter);
      const extension = web === undefined ? {} : webViewExtension(parseWebAddress(web));
      await runAgent(flags, { ...extension, bounds: { durationMs: duration, maxFlows: count } });
    });
}
