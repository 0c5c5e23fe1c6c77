/**
 * `flowtap collect --port N`: a pbflow collector on the command line. Receives `Collector.Send`
 * from flowtap agents (EXPORT=grpc) or the reference agent and prints every flow as a JSON line in
 * the reference's form, or as tables. Rejected requests are logged on stderr; SIGINT/SIGTERM stop
 * it after the calls in progress finish. With `--tls-cert`/`--tls-key` it serves TLS, and with
 * `--tls-client-ca` it requires client certificates (mutual TLS); each flag may come from its
 * COLLECTOR_TLS_* variable instead.
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { type Command, Option } from 'commander';
import { recordBatchOf } from '../../codec/record-batch.ts';
import { ConfigError } from '../../errors.ts';
import { DEFAULT_MAX_RECEIVE_MESSAGE_BYTES } from '../../export/grpc-limits.ts';
import { LINES_PER_WRITE } from '../../export/json-lines.ts';
import type { PemFile, ServerTlsFiles } from '../../export/tls.ts';
import { type Flow, flowToJson } from '../../model/flow.ts';
import { createLogger } from '../logger.ts';
import { flowStdout } from '../stdout.ts';
import { formatTable } from '../table-output.ts';

/** Options of `flowtap collect` as commander parses them. */
interface CollectOptions {
  port: number;
  host: string;
  output: 'json' | 'table';
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

/** Writes `flows` to `out`, JSON in pieces of LINES_PER_WRITE lines (see json-lines.ts), waiting for it to drain. */
async function print(out: Writable, flows: Flow[], output: 'json' | 'table'): Promise<void> {
  if (output === 'table') {
    if (!out.write(formatTable(recordBatchOf(flows)))) await once(out, 'drain');
    return;
  }
  for (let start = 0; start < flows.length; start += LINES_PER_WRITE) {
    const end = Math.min(flows.length, start + LINES_PER_WRITE);
    let text = '';
    for (let i = start; i < end; i++) text += `${flowToJson(flows[i])}\n`;
    if (!out.write(text)) await once(out, 'drain');
  }
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

async function collect(opts: CollectOptions, command: Command): Promise<void> {
  // Loaded here so other commands do not pay for gRPC at start-up.
  const { startCollector } = await import('../../export/grpc-collector.ts');
  const { serverCredentialsFromFiles } = await import('../../export/tls.ts');
  const tls = tlsFiles(opts, command);
  const credentials = tls && (await serverCredentialsFromFiles(tls));
  const log = createLogger('info');
  const out = flowStdout();
  const collector = await startCollector({
    host: opts.host,
    port: opts.port,
    credentials,
    maxReceiveMessageBytes: opts.maxMessageBytes,
    // The reply waits for stdout to drain, so a slow reader slows the agents, not our memory.
    onRecords: (flows) => print(out, flows, opts.output),
    onError: (err, peer) =>
      log.warn({ peer, code: (err as { code?: string }).code }, `rejected a request: ${err.message}`),
  });
  const security = !tls ? 'plaintext' : tls.clientCa ? 'TLS, client certificates required' : 'TLS';
  log.info(
    { host: opts.host, port: collector.port, security },
    `listening on ${opts.host}:${collector.port} (${security})`,
  );
  const signal = await Promise.race([once(process, 'SIGINT'), once(process, 'SIGTERM')]);
  log.info({ signal }, 'stopping');
  await collector.close();
}

/** Registers `flowtap collect`. */
export function registerCollectCommand(program: Command): void {
  program
    .command('collect')
    .description('receive flows over gRPC (pbflow, from flowtap or the reference agent) and print them')
    .requiredOption(
      '--port <n>',
      'TCP port to listen on (0 picks a free one)',
      integerIn('--port', 0, 65_535),
    )
    .option('--host <address>', 'address to listen on (0.0.0.0 or :: for every interface)', '127.0.0.1')
    .option('--output <format>', 'json (JSON lines in the reference form) or table', outputFormat, 'json')
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
    .action((opts: CollectOptions, command: Command) => collect(opts, command));
}
