/**
 * The grpc export's TLS flags, shared by `run` and `read` (both export through the same
 * settings; see TARGET_ENABLE_TLS and TARGET_TLS_* in src/agent/config.ts).
 */
import type { Command } from 'commander';
import type { CommandLineValues } from '../config.ts';

/** The CommandLineValues keys of the flags {@link addTargetTlsOptions} adds. */
const TARGET_TLS_KEYS = [
  'targetTls',
  'targetTlsCa',
  'targetTlsCert',
  'targetTlsKey',
  'targetTlsInsecureSkipVerify',
] as const satisfies readonly (keyof CommandLineValues)[];

/** The TLS flags of the grpc export, as commander parsed them. */
export type TargetTlsFlags = Pick<CommandLineValues, (typeof TARGET_TLS_KEYS)[number]>;

/** Adds `--target-tls` and `--target-tls-*` to `command`. */
export function addTargetTlsOptions(command: Command): Command {
  return command
    .option(
      '--target-tls',
      'send the grpc export over TLS [TARGET_ENABLE_TLS; on when a file below is given]',
    )
    .option(
      '--target-tls-ca <file>',
      "PEM CA certificates that sign the collector's certificate [TARGET_TLS_CA_CERT_PATH; system roots]",
    )
    .option(
      '--target-tls-cert <file>',
      'PEM client certificate, for collectors that require one (mutual TLS) [TARGET_TLS_USER_CERT_PATH]',
    )
    .option('--target-tls-key <file>', 'PEM private key of --target-tls-cert [TARGET_TLS_USER_KEY_PATH]')
    .option(
      '--target-tls-insecure-skip-verify',
      'accept any collector certificate, unverified: tests only [TARGET_TLS_INSECURE_SKIP_VERIFY; false]',
    );
}

/** The TLS flags among `opts`, for loadConfig. */
export function targetTlsFlags(opts: TargetTlsFlags): TargetTlsFlags {
  return Object.fromEntries(TARGET_TLS_KEYS.map((key) => [key, opts[key]]));
}
