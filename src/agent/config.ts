/**
 * The agent's configuration, parsed and validated once into a typed, frozen object. Each setting
 * comes from a command-line flag, else an environment variable (the reference's names), else the
 * optional config file (YAML or JSON; keys are the environment names or their camelCase), else its
 * default. A wrong value raises ConfigError naming the setting as the user wrote it, the value and
 * what is accepted.
 */
import { readFileSync } from 'node:fs';
import type { CaptureDirection } from '../capture/ebpf/capture.ts';
import { HEALTH_HOOKS_MODES, type HealthSettings } from '../ebpf/health-hooks.ts';
import { DEFAULT_KERNEL_MEMORY_MAX_BYTES, type FlowMapKindSetting } from '../ebpf/kernel-memory.ts';
import { ConfigError } from '../errors.ts';
import type { ClientTlsFiles, PemFile } from '../export/tls.ts';
import { buildFilter } from '../filter/build.ts';
import type { FilterProgram } from '../filter/program.ts';
import type { ListenMode } from '../ifaces/watcher.ts';
import type { StoreSettings } from '../store/store-exporter.ts';
import { defaultStoreDirectory, storeFile } from '../store/store-path.ts';
import { parseYamlText } from '../yaml-text.ts';
import { AGENT_IP_TYPES, type AgentIpSettings } from './agent-ip.ts';
import type { LogFormat } from './log-lines.ts';
import {
  ageSetting,
  booleanSetting,
  byteSizeSetting,
  choiceSetting,
  durationSetting,
  hostPortSetting,
  hostSetting,
  integerSetting,
  interfacePatternItem,
  ipAddressSetting,
  listSetting,
  pathSetting,
  portListSetting,
  type RawValue,
  type SettingParser,
} from './settings.ts';

/** Where evicted flows go; several may be given, each batch goes to all. */
export const EXPORT_KINDS = ['json', 'grpc', 'kafka', 'ipfix+udp', 'ipfix+tcp', 'store'] as const;
/** One export target kind. */
export type ExportKind = (typeof EXPORT_KINDS)[number];
/**
 * How the `json` export prints to stdout: JSON lines, a table per eviction for people, or the
 * live terminal view (run only; refreshed in place).
 */
export type OutputFormat = 'table' | 'json' | 'live';
/** pino levels; the reference's `panic` is read as `fatal`. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
/** A log level. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** A network endpoint. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** What exporters need; `flowtap read` builds its exporters from these too. */
export interface ExportSettings {
  /** Export targets, at least one. */
  readonly export: readonly ExportKind[];
  /** Collector of the grpc and ipfix exports. */
  readonly target: HostPort | undefined;
  /** Flows per gRPC message at most. */
  readonly grpcMessageMaxFlows: number;
  /** TLS of the grpc export (TARGET_ENABLE_TLS, TARGET_TLS_*); undefined = plaintext. */
  readonly targetTls: ClientTlsFiles | undefined;
  /** Batches each exporter may queue (BUFFERS_LENGTH). */
  readonly buffersLength: number;
  /** Format of the `json` export on stdout. */
  readonly output: OutputFormat;
  /** Reverse DNS names of addresses in the table and the live view (RESOLVE, `--resolve`; off). */
  readonly resolve: boolean;
  /** The KAFKA_* variables (and file keys), for the Kafka exporter's own parser. */
  readonly kafkaSettings: Readonly<Record<string, string>>;
  /** The flow store of the `store` export (STORE_PATH, STORE_RETENTION, STORE_MAX_BYTES). */
  readonly store: StoreSettings;
}

/** Every setting of `flowtap run`, validated. */
export interface AgentConfig extends ExportSettings {
  /** Interfaces to attach to (names or `/regex/`); empty = all. */
  readonly interfaces: readonly string[];
  /** Interfaces never attached to (names or `/regex/`); wins over `interfaces`. */
  readonly excludeInterfaces: readonly string[];
  /** Count one packet in this many (1 = all). */
  readonly sampling: number;
  /** Flows cached (kernel map and accounter) before the cache is evicted. */
  readonly cacheMaxFlows: number;
  /** Active timeout: flows are drained and evicted this often. */
  readonly cacheActiveTimeoutMs: number;
  /** Bound of each queue between stages, in batches. */
  readonly buffersLength: number;
  /** Log level of the structured logs on stderr. */
  readonly logLevel: LogLevel;
  /** Log lines as JSON or as text for people (LOG_FORMAT; text when stderr is a terminal). */
  readonly logFormat: LogFormat;
  /** How interfaces are discovered. */
  readonly listenInterfaces: ListenMode;
  /** Listing period when `listenInterfaces` is `poll`. */
  readonly listenPollPeriodMs: number;
  /** Which packets are counted. */
  readonly direction: CaptureDirection;
  /** Where `/metrics` listens; undefined = metrics off. */
  readonly metrics: HostPort | undefined;
  /** The compiled FILTER expression and FLOW_FILTER_RULES; undefined = count every packet. */
  readonly filter: FilterProgram | undefined;
  /** Kernel memory the datapath may take (flow maps, ring buffer); a larger setting is refused. */
  readonly kernelMemoryMaxBytes: number;
  /** Kernel flow map kind: by CPU count, or forced. */
  readonly kernelMapKind: FlowMapKindSetting;
  /**
   * `firstCome`: a packet met on several interfaces is one flow, counted on the first interface
   * that saw the flow, listing every interface it crossed; `none`: one flow per interface.
   */
  readonly deduper: Deduper;
  /** Key VXLAN, Geneve, GRE and IP-in-IP packets by the packet inside (docs/flow-key.md). */
  readonly tunnels: boolean;
  /** How the address written into every flow's agent IP is chosen (AGENT_IP, AGENT_IP_TYPE). */
  readonly agentIp: AgentIpSettings;
  /**
   * BIDIRECTIONAL: both directions of a conversation in one record with reverse counters
   * (src/account/biflow.ts); off by default.
   */
  readonly bidirectional: boolean;
  /** ENABLE_DNS_TRACKING: DNS queries matched to their responses on each flow; off by default. */
  readonly dnsTracking: boolean;
  /** DNS_TRACKING_PORT: packets to or from these ports are DNS (the reference's one port, or a list). */
  readonly dnsTrackingPorts: readonly number[];
  /**
   * TCP health per flow (ENABLE_RTT, ENABLE_TCP_RETRANS, ENABLE_PKT_DROPS) and how it hooks the
   * kernel (HEALTH_HOOKS); defaults in {@link DEFAULT_HEALTH}.
   */
  readonly health: HealthSettings;
}

/**
 * Which TCP health features run by default, from their measured cost (bench/health.bench.ts,
 * figures in the README): retransmissions and drops cost nothing while nothing goes wrong (their
 * programs run only on a retransmission or a drop), so they are on; RTT runs on every TCP segment
 * a local socket receives, so it is off, as in the reference.
 */
export const DEFAULT_HEALTH: HealthSettings = Object.freeze({
  rtt: false,
  retrans: true,
  drops: true,
  hooks: 'auto',
});

/** DEDUPER values: the reference's names. */
export const DEDUPERS = ['firstCome', 'none'] as const;
/** How a packet met on several interfaces is counted. */
export type Deduper = (typeof DEDUPERS)[number];

/** Values as the command line gave them (commander's camelCase option names); absent = not given. */
export interface CommandLineValues {
  interfaces?: string;
  excludeInterfaces?: string;
  export?: string;
  target?: string;
  /** `true` when `--target-tls` is given. */
  targetTls?: string | boolean;
  targetTlsCa?: string;
  targetTlsCert?: string;
  targetTlsKey?: string;
  targetTlsInsecureSkipVerify?: string | boolean;
  sampling?: string;
  cacheMaxFlows?: string;
  cacheActiveTimeout?: string;
  direction?: string;
  listenInterfaces?: string;
  listenPollPeriod?: string;
  buffersLength?: string;
  logLevel?: string;
  /** `true` when `--metrics` is given without an address. */
  metrics?: string | boolean;
  output?: string;
  /** `true` when `--resolve` is given. */
  resolve?: string | boolean;
  kernelMemoryMax?: string;
  kernelMapKind?: string;
  deduper?: string;
  /** `true` when `--tunnels` is given. */
  tunnels?: string | boolean;
  agentIp?: string;
  /** `true` when `--bidirectional` is given. */
  bidirectional?: string | boolean;
  /** `true` when `--dns-tracking` is given. */
  dnsTracking?: string | boolean;
  dnsTrackingPort?: string;
  /** `true`/`false` for `--rtt`/`--no-rtt`. */
  rtt?: string | boolean;
  /** `true`/`false` for `--tcp-retrans`/`--no-tcp-retrans`. */
  tcpRetrans?: string | boolean;
  /** `true`/`false` for `--pkt-drops`/`--no-pkt-drops`. */
  pktDrops?: string | boolean;
  healthHooks?: string;
  config?: string;
  /** Directory (or .duckdb file) of the flow store. */
  storePath?: string;
  /** The filter expression (positional argument or `--filter`). */
  filter?: string;
}

/** Everything configuration is read from. */
export interface ConfigSources {
  flags: CommandLineValues;
  env: Readonly<Record<string, string | undefined>>;
  /** Whether stdout is a terminal: decides the default `output`. */
  stdoutIsTty: boolean;
  /** Whether stderr is a terminal: decides the default LOG_FORMAT (text there, else json). */
  stderrIsTty?: boolean;
  /** What a terminal gets by default: `live` for run, `table` (the default) for read. */
  terminalOutput?: 'live' | 'table';
}

/**
 * Default CACHE_MAX_FLOWS: 2^17 flows in the kernel map and the accounter (the reference's 1000
 * fills at once under a flood of new flows, and every further packet then costs a ring-buffer
 * record). It holds every flow of a SYN flood cycling all 65 536 source ports, in both directions,
 * within one active timeout, so such a flood aggregates in the kernel. It costs 13.6 MB of rows in
 * user space, and in the kernel 2^17 x 104 B per CPU for each of the two per-CPU maps: 27 MiB per
 * CPU, 54 MiB on 2 CPUs, 218 MiB on 8; larger hosts need the shared map (27 MiB whatever the
 * CPU count) to stay within a 256 MiB kernel-memory budget.
 */
export const DEFAULT_CACHE_MAX_FLOWS = 1 << 17;

/** DNS_TRACKING_PORT's default, the reference's: DNS servers listen on 53 (mDNS, 5353, is opt-in). */
export const DNS_DEFAULT_PORT = 53;

/** Where `--metrics` listens when no address is given; loopback, since metrics are unauthenticated. */
export const DEFAULT_METRICS_ADDRESS: HostPort = Object.freeze({ host: '127.0.0.1', port: 9400 });

/** How long the flow store keeps flows by default (STORE_RETENTION). */
export const DEFAULT_STORE_RETENTION_MS = 7 * 86_400_000;

interface SettingSpec<T> {
  /** Environment variable (and config file key). */
  env: string;
  /** Older environment names read when `env` is unset. */
  legacyEnv?: string[];
  /** Command-line flag and its key in CommandLineValues. */
  flag?: [string, keyof CommandLineValues];
  parser: SettingParser<T>;
}

const interfaceList = listSetting(
  'a comma-separated list of interface names (up to 15 characters) or /regex/ entries',
  interfacePatternItem,
);
const exportList = listSetting(`a comma-separated list of ${EXPORT_KINDS.join(', ')}`).parse;

function pemPathSpec(env: string, flag: string, key: keyof CommandLineValues): SettingSpec<string> {
  return { env, flag: [flag, key], parser: pathSetting };
}

const SPECS = {
  interfaces: { env: 'INTERFACES', flag: ['--interfaces', 'interfaces'], parser: interfaceList },
  excludeInterfaces: {
    env: 'EXCLUDE_INTERFACES',
    flag: ['--exclude-interfaces', 'excludeInterfaces'],
    parser: interfaceList,
  },
  sampling: {
    env: 'SAMPLING',
    flag: ['--sampling', 'sampling'],
    parser: integerSetting(0, 0xffff_ffff),
  },
  cacheMaxFlows: {
    env: 'CACHE_MAX_FLOWS',
    flag: ['--cache-max-flows', 'cacheMaxFlows'],
    parser: integerSetting(1, 1 << 24),
  },
  cacheActiveTimeout: {
    env: 'CACHE_ACTIVE_TIMEOUT',
    flag: ['--cache-active-timeout', 'cacheActiveTimeout'],
    parser: durationSetting(10, 3_600_000, '5s or 500ms'),
  },
  buffersLength: {
    env: 'BUFFERS_LENGTH',
    flag: ['--buffers-length', 'buffersLength'],
    parser: integerSetting(1, 100_000),
  },
  logLevel: {
    env: 'LOG_LEVEL',
    flag: ['--log-level', 'logLevel'],
    parser: choiceSetting([...LOG_LEVELS, 'panic']),
  },
  listenInterfaces: {
    env: 'LISTEN_INTERFACES',
    flag: ['--listen-interfaces', 'listenInterfaces'],
    parser: choiceSetting(['watch', 'poll']),
  },
  listenPollPeriod: {
    env: 'LISTEN_POLL_PERIOD',
    flag: ['--listen-poll-period', 'listenPollPeriod'],
    parser: durationSetting(10, 3_600_000, '10s or 500ms'),
  },
  direction: {
    env: 'DIRECTION',
    flag: ['--direction', 'direction'],
    parser: choiceSetting(['ingress', 'egress', 'both']),
  },
  export: {
    env: 'EXPORT',
    flag: ['--export', 'export'],
    parser: {
      accepted: `a comma-separated list of ${EXPORT_KINDS.join(', ')}`,
      parse: (raw: RawValue) => {
        const kinds = exportList(raw)?.map((k) => k.toLowerCase());
        if (!kinds || kinds.length === 0) return undefined;
        if (!kinds.every((k): k is ExportKind => (EXPORT_KINDS as readonly string[]).includes(k))) return;
        return [...new Set(kinds)];
      },
    },
  },
  targetHost: { env: 'TARGET_HOST', legacyEnv: ['FLOWS_TARGET_HOST'], parser: hostSetting },
  targetPort: { env: 'TARGET_PORT', legacyEnv: ['FLOWS_TARGET_PORT'], parser: integerSetting(1, 65_535) },
  target: { env: 'TARGET', flag: ['--target', 'target'], parser: hostPortSetting('') },
  grpcMessageMaxFlows: { env: 'GRPC_MESSAGE_MAX_FLOWS', parser: integerSetting(1, 1_000_000) },
  targetTls: { env: 'TARGET_ENABLE_TLS', flag: ['--target-tls', 'targetTls'], parser: booleanSetting },
  targetTlsCa: pemPathSpec('TARGET_TLS_CA_CERT_PATH', '--target-tls-ca', 'targetTlsCa'),
  targetTlsCert: pemPathSpec('TARGET_TLS_USER_CERT_PATH', '--target-tls-cert', 'targetTlsCert'),
  targetTlsKey: pemPathSpec('TARGET_TLS_USER_KEY_PATH', '--target-tls-key', 'targetTlsKey'),
  targetTlsInsecureSkipVerify: {
    env: 'TARGET_TLS_INSECURE_SKIP_VERIFY',
    flag: ['--target-tls-insecure-skip-verify', 'targetTlsInsecureSkipVerify'],
    parser: booleanSetting,
  },
  metrics: { env: 'METRICS', flag: ['--metrics', 'metrics'], parser: hostPortSetting('127.0.0.1', 0) },
  output: { env: 'OUTPUT', flag: ['--output', 'output'], parser: choiceSetting(['live', 'table', 'json']) },
  logFormat: { env: 'LOG_FORMAT', parser: choiceSetting(['json', 'text']) },
  resolve: { env: 'RESOLVE', flag: ['--resolve', 'resolve'], parser: booleanSetting },
  storePath: { env: 'STORE_PATH', flag: ['--store-path', 'storePath'], parser: pathSetting },
  storeRetention: { env: 'STORE_RETENTION', parser: ageSetting },
  storeMaxBytes: { env: 'STORE_MAX_BYTES', parser: byteSizeSetting(0, Number.MAX_SAFE_INTEGER) },
  filter: {
    env: 'FILTER',
    flag: ['--filter', 'filter'],
    parser: {
      accepted: 'a pcap-filter expression such as "tcp port 443"',
      parse: (raw: RawValue) => (typeof raw === 'string' ? raw : undefined),
    },
  },
  // Checked by the filter compiler, which says which rule and key is wrong.
  flowFilterRules: {
    env: 'FLOW_FILTER_RULES',
    parser: { accepted: 'a JSON or YAML list of rules', parse: (raw: RawValue): unknown => raw },
  },
  kernelMemoryMax: {
    env: 'KERNEL_MEMORY_MAX',
    flag: ['--kernel-memory-max', 'kernelMemoryMax'],
    parser: byteSizeSetting(2 ** 20, 2 ** 40),
  },
  kernelMapKind: {
    env: 'KERNEL_MAP_KIND',
    flag: ['--kernel-map-kind', 'kernelMapKind'],
    parser: choiceSetting(['auto', 'percpu', 'shared']),
  },
  deduper: { env: 'DEDUPER', flag: ['--deduper', 'deduper'], parser: choiceSetting(DEDUPERS) },
  tunnels: { env: 'ENABLE_TUNNELS', flag: ['--tunnels', 'tunnels'], parser: booleanSetting },
  agentIp: { env: 'AGENT_IP', flag: ['--agent-ip', 'agentIp'], parser: ipAddressSetting },
  agentIpType: { env: 'AGENT_IP_TYPE', parser: choiceSetting(AGENT_IP_TYPES) },
  bidirectional: {
    env: 'BIDIRECTIONAL',
    flag: ['--bidirectional', 'bidirectional'],
    parser: booleanSetting,
  },
  dnsTracking: {
    env: 'ENABLE_DNS_TRACKING',
    flag: ['--dns-tracking', 'dnsTracking'],
    parser: booleanSetting,
  },
  dnsTrackingPort: {
    env: 'DNS_TRACKING_PORT',
    flag: ['--dns-tracking-port', 'dnsTrackingPort'],
    parser: portListSetting,
  },
  enableRtt: { env: 'ENABLE_RTT', flag: ['--rtt', 'rtt'], parser: booleanSetting },
  enableTcpRetrans: {
    env: 'ENABLE_TCP_RETRANS',
    flag: ['--tcp-retrans', 'tcpRetrans'],
    parser: booleanSetting,
  },
  enablePktDrops: { env: 'ENABLE_PKT_DROPS', flag: ['--pkt-drops', 'pktDrops'], parser: booleanSetting },
  healthHooks: {
    env: 'HEALTH_HOOKS',
    flag: ['--health-hooks', 'healthHooks'],
    parser: choiceSetting(HEALTH_HOOKS_MODES),
  },
} satisfies Record<string, SettingSpec<unknown>>;

type SpecKey = keyof typeof SPECS;
type ValueOf<K extends SpecKey> = (typeof SPECS)[K]['parser'] extends SettingParser<infer T> ? T : never;

/** `CACHE_MAX_FLOWS` → `cacheMaxFlows`. */
function camelCase(envName: string): string {
  return envName.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** A config file's settings by environment name; camelCase keys are mapped to those. */
function readConfigFile(path: string): Map<string, RawValue> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    // A settings problem like any other (exit 2): the file named by --config is part of the settings.
    throw new ConfigError('--config', path, `a readable YAML or JSON file (${(err as Error).message})`);
  }
  let doc: unknown;
  try {
    doc = parseYamlText(text); // YAML is a superset of JSON: one parser reads both
  } catch (err) {
    throw new ConfigError('--config', path, `a YAML or JSON file (${(err as Error).message.split('\n')[0]})`);
  }
  if (doc === null || doc === undefined) return new Map();
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ConfigError('--config', path, 'a YAML or JSON mapping of setting names to values');
  }
  const byCamel = new Map<string, string>();
  for (const spec of Object.values(SPECS) as SettingSpec<unknown>[]) {
    for (const name of [spec.env, ...(spec.legacyEnv ?? [])]) byCamel.set(camelCase(name), name);
  }
  const values = new Map<string, RawValue>();
  for (const [key, value] of Object.entries(doc)) {
    const envName = /^[A-Z0-9_]+$/.test(key) ? key : (byCamel.get(key) ?? kafkaEnvName(key));
    const known = envName !== undefined && (byCamel.has(camelCase(envName)) || envName.startsWith('KAFKA_'));
    if (!known) {
      throw new ConfigError(
        `${key} in ${path}`,
        JSON.stringify(value) ?? '',
        'a setting name such as CACHE_MAX_FLOWS or cacheMaxFlows (see flowtap run --help)',
      );
    }
    if (value === null || value === undefined) continue;
    if (typeof value === 'object' && !Array.isArray(value)) {
      throw new ConfigError(`${key} in ${path}`, JSON.stringify(value), 'a string, number, boolean or list');
    }
    values.set(envName, value as RawValue);
  }
  return values;
}

/** `kafkaBrokers` → `KAFKA_BROKERS`; undefined for keys that are not Kafka settings. */
function kafkaEnvName(key: string): string | undefined {
  if (!/^kafka[A-Z]/.test(key)) return undefined;
  return key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();
}

class SourceReader {
  constructor(
    private readonly sources: ConfigSources,
    private readonly file: Map<string, RawValue>,
    private readonly filePath: string,
  ) {}

  /** The value with the highest precedence and where it came from; undefined when none is set. */
  raw(key: SpecKey): { value: RawValue; label: string } | undefined {
    const spec: SettingSpec<unknown> = SPECS[key];
    if (spec.flag) {
      const value = this.sources.flags[spec.flag[1]];
      if (value !== undefined) return { value, label: spec.flag[0] };
    }
    for (const name of [spec.env, ...(spec.legacyEnv ?? [])]) {
      const value = this.sources.env[name];
      if (value !== undefined && value !== '') return { value, label: name };
    }
    for (const name of [spec.env, ...(spec.legacyEnv ?? [])]) {
      const value = this.file.get(name);
      if (value !== undefined) return { value, label: `${name} in ${this.filePath}` };
    }
    return undefined;
  }

  /** The parsed value, or `fallback` when the setting is not given. */
  get<K extends SpecKey>(key: K, fallback: ValueOf<K>): ValueOf<K>;
  get<K extends SpecKey>(key: K): ValueOf<K> | undefined;
  get<K extends SpecKey>(key: K, fallback?: ValueOf<K>): ValueOf<K> | undefined {
    const found = this.raw(key);
    if (found === undefined) return fallback;
    const parser = SPECS[key].parser as SettingParser<ValueOf<K>>;
    const value = parser.parse(found.value);
    if (value === undefined) throw new ConfigError(found.label, rawText(found.value), parser.accepted);
    return value;
  }

  /** Every KAFKA_* setting, environment over file, as text. */
  kafkaSettings(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [name, value] of this.file) if (name.startsWith('KAFKA_')) out[name] = rawText(value);
    for (const [name, value] of Object.entries(this.sources.env)) {
      if (name.startsWith('KAFKA_') && value !== undefined) out[name] = value;
    }
    return out;
  }
}

function rawText(value: RawValue): string {
  return Array.isArray(value) ? value.map(String).join(',') : String(value);
}

/** Whether `--metrics`/METRICS turns metrics off (`false`, `off`, `no`) or on at the default address. */
function metricsSwitch(value: RawValue): 'off' | 'default' | undefined {
  if (value === true) return 'default';
  if (value === false) return 'off';
  const text = String(value).trim().toLowerCase();
  if (['false', 'off', 'no'].includes(text)) return 'off';
  if (['true', 'on', 'yes'].includes(text)) return 'default';
  return undefined;
}

function readMetrics(reader: SourceReader): HostPort | undefined {
  const found = reader.raw('metrics');
  if (found === undefined) return undefined;
  const onOff = metricsSwitch(found.value);
  if (onOff === 'off') return undefined;
  if (onOff === 'default') return DEFAULT_METRICS_ADDRESS;
  return Object.freeze(reader.get('metrics'));
}

function readTarget(reader: SourceReader): HostPort | undefined {
  const combined = reader.raw('target');
  const hostFound = reader.raw('targetHost');
  const portFound = reader.raw('targetPort');
  // --target overrides the separate host and port; TARGET=host:port in env or file ranks with them.
  if (combined?.label === '--target' || (combined && !hostFound && !portFound)) {
    const target = reader.get('target');
    if (target && target.host === '') {
      throw new ConfigError(combined.label, rawText(combined.value), 'host:port with a host');
    }
    return target && Object.freeze(target);
  }
  const host = reader.get('targetHost');
  const port = reader.get('targetPort');
  if (host === undefined && port === undefined) return undefined;
  if (host === undefined) {
    throw new ConfigError('TARGET_HOST', '', `the collector's host, given together with TARGET_PORT=${port}`);
  }
  if (port === undefined) {
    throw new ConfigError('TARGET_PORT', '', `the collector's port, given together with TARGET_HOST=${host}`);
  }
  return Object.freeze({ host, port });
}

/**
 * TLS of the grpc export. A CA, certificate or key path turns TLS on by itself (a CA meant for a
 * connection that then goes in clear helps nobody); TARGET_ENABLE_TLS=false turns it off and the
 * paths are ignored, as KAFKA_ENABLE_TLS=false does. The files are read by the exporter at start.
 */
function readTargetTls(reader: SourceReader): ClientTlsFiles | undefined {
  const file = (key: 'targetTlsCa' | 'targetTlsCert' | 'targetTlsKey'): PemFile | undefined => {
    const path = reader.get(key);
    return path === undefined ? undefined : Object.freeze({ setting: reader.raw(key)?.label ?? '', path });
  };
  const [ca, cert, key] = [file('targetTlsCa'), file('targetTlsCert'), file('targetTlsKey')];
  const enabled = reader.get('targetTls') ?? (ca ?? cert ?? key) !== undefined;
  if (!enabled) return undefined;
  if (cert === undefined && key !== undefined) {
    throw new ConfigError(
      'TARGET_TLS_USER_CERT_PATH',
      '',
      `the PEM client certificate (--target-tls-cert) of the key ${key.setting}=${key.path}`,
    );
  }
  if (key === undefined && cert !== undefined) {
    throw new ConfigError(
      'TARGET_TLS_USER_KEY_PATH',
      '',
      `the PEM private key (--target-tls-key) of the certificate ${cert.setting}=${cert.path}`,
    );
  }
  return Object.freeze({
    ca,
    keyPair: cert && key && Object.freeze({ cert, key }),
    insecureSkipVerify: reader.get('targetTlsInsecureSkipVerify', false),
  });
}

/** Validates `sources` (and the config file they name) into one frozen AgentConfig. */
export function loadConfig(sources: ConfigSources): AgentConfig {
  const filePath = sources.flags.config;
  const file = filePath === undefined ? new Map<string, RawValue>() : readConfigFile(filePath);
  const reader = new SourceReader(sources, file, filePath ?? '');
  const level = reader.get('logLevel', 'info');
  const exportKinds = reader.get('export', ['json']) as ExportKind[];
  const target = readTarget(reader);
  const needsTarget = exportKinds.filter((k) => k === 'grpc' || k.startsWith('ipfix'));
  if (needsTarget.length > 0 && target === undefined) {
    throw new ConfigError(
      '--target',
      '',
      `the collector as host:port for EXPORT=${needsTarget.join(',')} (or TARGET_HOST and TARGET_PORT)`,
    );
  }
  const config: AgentConfig = {
    interfaces: Object.freeze(reader.get('interfaces', [])),
    excludeInterfaces: Object.freeze(reader.get('excludeInterfaces', ['lo'])),
    // The reference reads 0 as "sampling off", i.e. every packet.
    sampling: Math.max(1, reader.get('sampling', 1)),
    cacheMaxFlows: reader.get('cacheMaxFlows', DEFAULT_CACHE_MAX_FLOWS),
    cacheActiveTimeoutMs: reader.get('cacheActiveTimeout', 5_000),
    buffersLength: reader.get('buffersLength', 50),
    logLevel: level === 'panic' ? 'fatal' : level,
    logFormat: reader.get('logFormat', sources.stderrIsTty ? 'text' : 'json'),
    listenInterfaces: reader.get('listenInterfaces', 'watch'),
    listenPollPeriodMs: reader.get('listenPollPeriod', 10_000),
    direction: reader.get('direction', 'both'),
    export: Object.freeze(exportKinds),
    target,
    grpcMessageMaxFlows: reader.get('grpcMessageMaxFlows', 10_000),
    targetTls: readTargetTls(reader),
    metrics: readMetrics(reader),
    output: reader.get('output', sources.stdoutIsTty ? (sources.terminalOutput ?? 'table') : 'json'),
    resolve: reader.get('resolve', false),
    kafkaSettings: Object.freeze(reader.kafkaSettings()),
    store: Object.freeze({
      file: storeFile(reader.get('storePath', defaultStoreDirectory(sources.env))),
      retentionMs: reader.get('storeRetention', DEFAULT_STORE_RETENTION_MS),
      maxBytes: reader.get('storeMaxBytes', 0),
    }),
    filter: buildFilter({ expression: reader.get('filter'), rules: reader.get('flowFilterRules') }),
    kernelMemoryMaxBytes: reader.get('kernelMemoryMax', DEFAULT_KERNEL_MEMORY_MAX_BYTES),
    kernelMapKind: reader.get('kernelMapKind', 'auto'),
    deduper: reader.get('deduper', 'firstCome'),
    tunnels: reader.get('tunnels', false),
    agentIp: Object.freeze({ address: reader.get('agentIp'), type: reader.get('agentIpType', 'any') }),
    bidirectional: reader.get('bidirectional', false),
    dnsTracking: reader.get('dnsTracking', false),
    dnsTrackingPorts: Object.freeze(reader.get('dnsTrackingPort', [DNS_DEFAULT_PORT])),
    health: Object.freeze({
      rtt: reader.get('enableRtt', DEFAULT_HEALTH.rtt),
      retrans: reader.get('enableTcpRetrans', DEFAULT_HEALTH.retrans),
      drops: reader.get('enablePktDrops', DEFAULT_HEALTH.drops),
      hooks: reader.get('healthHooks', DEFAULT_HEALTH.hooks),
    }),
  };
  return Object.freeze(config);
}
