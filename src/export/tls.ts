/**
 * TLS credentials of the gRPC exporter and collector, read from PEM files once at start so a bad
 * path is a ConfigError naming the setting, not a failed batch later.
 */
import { readFile } from 'node:fs/promises';
import { type ChannelCredentials, credentials, ServerCredentials } from '@grpc/grpc-js';
import { ConfigError } from '../errors.ts';

/** PEM files of a TLS client (the exporter); all optional. */
export interface ClientTlsFiles {
  /** CA certificates that sign the collector's certificate (default: the system roots). */
  caPath?: string;
  /** Client certificate, for collectors that require one (mutual TLS); needs `keyPath`. */
  certPath?: string;
  /** Private key of `certPath`. */
  keyPath?: string;
}

/** PEM files of a TLS server (the collector). */
export interface ServerTlsFiles {
  /** Server certificate chain. */
  certPath: string;
  /** Private key of `certPath`. */
  keyPath: string;
  /** When given, clients must present a certificate signed by these CAs (mutual TLS). */
  clientCaPath?: string;
}

async function readPem(setting: string, path: string | undefined): Promise<Buffer | null> {
  if (path === undefined) return null;
  try {
    return await readFile(path);
  } catch (err) {
    throw new ConfigError(setting, path, `a readable PEM file (${(err as Error).message})`);
  }
}

/** TLS channel credentials for the gRPC exporter. */
export async function clientCredentialsFromFiles(files: ClientTlsFiles): Promise<ChannelCredentials> {
  if ((files.certPath === undefined) !== (files.keyPath === undefined)) {
    throw new ConfigError(
      'TLS client certificate',
      files.certPath ?? files.keyPath ?? '',
      'both a certificate and its key',
    );
  }
  const [ca, cert, key] = await Promise.all([
    readPem('TLS CA', files.caPath),
    readPem('TLS client certificate', files.certPath),
    readPem('TLS client key', files.keyPath),
  ]);
  return credentials.createSsl(ca, key, cert);
}

/** TLS server credentials for the collector. */
export async function serverCredentialsFromFiles(files: ServerTlsFiles): Promise<ServerCredentials> {
  const [cert, key, clientCa] = await Promise.all([
    readPem('TLS certificate', files.certPath),
    readPem('TLS key', files.keyPath),
    readPem('TLS client CA', files.clientCaPath),
  ]);
  return ServerCredentials.createSsl(clientCa, [{ cert_chain: cert!, private_key: key! }], clientCa !== null);
}
