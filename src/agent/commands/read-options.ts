/**
 * The flags of `flowtap read` and what they become: the read's own settings (cache, direction,
 * flush timeout, web view) and the agent's export settings (through src/agent/config.ts, so
 * `read` builds its exporters as `run` does), parsed once into a frozen object.
 */
import type { Command } from 'commander';
import { parseLocalHosts } from '../../capture/pcap/direction.ts';
import { DEFAULT_WEB_ADDRESS, parseWebAddress, type WebAddress } from '../../web/address.ts';
import { type AgentConfig, type CommandLineValues, loadConfig } from '../config.ts';
import { addFileCacheOptions, durationOption, filterFlag } from './option-parsers.ts';
import type { ReadOptions } from './read-pipeline.ts';
import { addTargetTlsOptions, type TargetTlsFlags, targetTlsFlags } from './target-tls-options.ts';

/** How long exporters may take, by default, after the capture ends, to deliver what they hold. */
const EXPORT_FLUSH_TIMEOUT_MS = 30_000;

/** The values commander gives for the flags {@link addReadOptions} declares. */
export interface ReadFlags extends TargetTlsFlags {
  filter?: string;
  quiet?: boolean;
  store?: boolean;
  storePath?: string;
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
  deduper?: string;
  tunnels?: boolean;
  agentIp?: string;
  bidirectional?: boolean;
  dnsTracking?: boolean;
  dnsTrackingPort?: string;
  /** `--rtt`/`--no-rtt`: handshake times (absent: the setting, else on). */
  rtt?: boolean;
  /** `--tcp-retrans`/`--no-tcp-retrans`: retransmissions (absent: the setting, else on). */
  tcpRetrans?: boolean;
}

/** Everything one `flowtap read` runs with. */
export interface ReadSettings {
  /** The capture files (patterns expanded) in the order given, or `['-']` for standard input. */
  readonly files: readonly string[];
  /** No progress line on stderr. */
  readonly quiet: boolean;
  /** Cache, timeout, direction and pairing of the read; the agent IP is resolved when it starts. */
  readonly read: Omit<ReadOptions, 'agentIp'>;
  /** Export kinds, target, output and log level, as `run` has them. */
  readonly config: AgentConfig;
  /** How long exporters may take after the capture ends. */
  readonly exportFlushTimeoutMs: number;
  /** Where the web view listens; undefined without `--web`. */
  readonly web?: WebAddress;
}

/** Declares the flags of `flowtap read` on `command`. */
export function addReadOptions(command: Command): Command {
  command
    .option('--filter <expression>', 'pcap-filter expression, as the words after the files [FILTER]')
    .option('--quiet', 'no progress line on stderr (drawn only when stderr is a terminal)')
    .option(
      '--local-net <cidrs>',
      'comma-separated local networks: packets from them are EGRESS, others INGRESS (e.g. 10.0.0.0/8,fd00::/8)',
    )
    .option('--local-mac <macs>', 'comma-separated local MAC addresses: packets from them are EGRESS')
    .option(
      '--deduper <mode>',
      'firstCome: a packet on several interfaces of a pcapng is one flow listing them; none: one flow per interface [DEDUPER; firstCome]',
    )
    .option(
      '--tunnels',
      'key VXLAN, Geneve, GRE and IP-in-IP packets by the packet inside [ENABLE_TUNNELS; off]',
    )
    .option(
      '--bidirectional',
      'both directions of a conversation in one record with reverse counters (RFC 5103) [BIDIRECTIONAL]',
    )
    .option(
      '--agent-ip <address>',
      "address written into every flow as the agent's [AGENT_IP; the default route's source address]",
    )
    .option('--rtt', "each TCP handshake's round-trip time, on the capture's clock [ENABLE_RTT; on for read]")
    .option('--no-rtt', 'no handshake times')
    .option(
      '--tcp-retrans',
      "retransmitted segments and bytes per TCP flow, by Wireshark's rules [ENABLE_TCP_RETRANS; on]",
    )
    .option('--no-tcp-retrans', 'no retransmissions')
    .option(
      '--dns-tracking',
      'match DNS queries to their responses: id, flags, response code, name and latency on each flow [ENABLE_DNS_TRACKING; off]',
    )
    .option(
      '--dns-tracking-port <ports>',
      'ports whose UDP and TCP packets are DNS, comma-separated (53,5353 adds mDNS) [DNS_TRACKING_PORT; 53]',
    );
  addFileCacheOptions(command, 'packets')
    .option(
      '-e, --export <kinds>',
      'where flows go: json, grpc, kafka, ipfix+udp, ipfix+tcp (comma-separated)',
    )
    .option('--target <host:port>', 'collector of the grpc and ipfix exports')
    .option('--store', 'also keep the flows in the flow store (same as adding store to --export)')
    .option('--store-path <path>', 'directory (or .duckdb file) of the flow store [STORE_PATH]');
  return addTargetTlsOptions(command)
    .option('--output <format>', 'stdout form of the json export: json or table')
    .option('--log-level <level>', 'log level of the messages on stderr')
    .addOption(
      durationOption(
        '--export-flush-timeout <duration>',
        'how long exporters may take after the capture ends to deliver what they hold',
        EXPORT_FLUSH_TIMEOUT_MS,
      ),
    )
    .option(
      '--web [addr]',
      `also serve the web view of the capture's timeline at addr (host:port or port), until SIGINT/SIGTERM [off, ${DEFAULT_WEB_ADDRESS.host}:${DEFAULT_WEB_ADDRESS.port} when given alone]`,
    );
}

/**
 * The settings of a read of `files` with `flags` (and the environment's export settings); the
 * words after the files (`filterWords`) are the filter expression. Throws ConfigError naming the
 * first bad flag or setting, FilterSyntaxError for a bad filter.
 */
export function readSettings(
  files: readonly string[],
  filterWords: readonly string[],
  flags: ReadFlags,
  process: { env: NodeJS.ProcessEnv; stdoutIsTty: boolean },
): ReadSettings {
  const localHosts = parseLocalHosts(flags.localNet, flags.localMac);
  const exportFlags: CommandLineValues = {
    export: flags.store ? `${flags.export ?? 'json'},store` : flags.export,
    storePath: flags.storePath,
    target: flags.target,
    output: flags.output,
    logLevel: flags.logLevel,
    ...targetTlsFlags(flags),
    filter: filterFlag(filterWords, flags.filter),
    deduper: flags.deduper,
    tunnels: flags.tunnels,
    agentIp: flags.agentIp,
    bidirectional: flags.bidirectional,
    dnsTracking: flags.dnsTracking,
    dnsTrackingPort: flags.dnsTrackingPort,
    rtt: flags.rtt,
    tcpRetrans: flags.tcpRetrans,
  };
  const config = loadConfig({ flags: exportFlags, env: process.env, stdoutIsTty: process.stdoutIsTty });
  // The same settings as the live datapath's, but on unless set: a capture is read once, and its
  // analysis costs no kernel time (the live defaults weigh that).
  const chosen = (flag: boolean | undefined, env: string, value: boolean) =>
    flag !== undefined || process.env[env] !== undefined ? value : true;
  return Object.freeze({
    files: Object.freeze([...files]),
    quiet: flags.quiet === true,
    read: Object.freeze({
      cacheMaxFlows: flags.cacheMaxFlows,
      cacheActiveTimeoutMs: flags.cacheActiveTimeout,
      localHosts,
      filter: config.filter,
      dedup: config.deduper === 'firstCome',
      tunnels: config.tunnels,
      bidirectional: config.bidirectional,
      dnsPorts: config.dnsTracking ? config.dnsTrackingPorts : undefined,
      tcpHealth: Object.freeze({
        rtt: chosen(flags.rtt, 'ENABLE_RTT', config.health.rtt),
        retransmissions: chosen(flags.tcpRetrans, 'ENABLE_TCP_RETRANS', config.health.retrans),
      }),
    }),
    config,
    exportFlushTimeoutMs: flags.exportFlushTimeout,
    web: flags.web === undefined ? undefined : parseWebAddress(flags.web),
  });
}
