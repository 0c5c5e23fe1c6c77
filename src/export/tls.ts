/**
 * TLS credentials of the gRPC exporter and collector, read from PEM files once at start and
 * checked there (each file holds what its setting promises; a certificate and its key belong
 * together), so a bad file is a ConfigError naming the setting and the path, not a handshake
 * that fails later for a reason the user has to guess.
 */
import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { type ChannelCredentials, credentials, ServerCredentials } from '@grpc/grpc-js';
import { ConfigError } from '../errors.ts';

/** A PEM file and the setting that named it, as the user wrote it (flag, variable or file key). */
export interface PemFile {
  readonly setting: string;
  readonly path: string;
}

/** A certificate chain and its private key. */
export interface KeyPairFiles {
  /** Certificate chain, the own certificate first. */
  readonly cert: PemFile;
  /** Private key of the first certificate of `cert`. */
  readonly key: PemFile;
}

/** TLS of a client (the gRPC exporter). */
export interface ClientTlsFiles {
  /** CA certificates that sign the collector's certificate; undefined = the system roots. */
  readonly ca?: PemFile;
  /** Client certificate, for collectors that require one (mutual TLS). */
  readonly keyPair?: KeyPairFiles;
  /** Accept any collector certificate, unverified: for tests only. */
  readonly insecureSkipVerify?: boolean;
}

/** TLS of a server (the collector). */
export interface ServerTlsFiles {
  /** The server's certificate and key. */
  readonly keyPair: KeyPairFiles;
  /** When given, clients must present a certificate signed by these CAs (mutual TLS). */
  readonly clientCa?: PemFile;
}

const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function invalid(file: PemFile, what: string, detail: string): ConfigError {
  return new ConfigError(file.setting, file.path, `a readable PEM file holding ${what} (${detail})`);
}

async function readPem(file: PemFile, what: string): Promise<Buffer> {
  try {
    return await readFile(file.path);
  } catch (err) {
    throw invalid(file, what, (err as Error).message);
  }
}

/** The certificates of a PEM file, each parsed, so a damaged or empty file is refused here. */
async function readCertificates(
  file: PemFile,
  what: string,
): Promise<{ pem: Buffer; first: X509Certificate }> {
  const pem = await readPem(file, what);
  const blocks = pem.toString('latin1').match(CERTIFICATE_BLOCK);
  if (!blocks) throw invalid(file, what, 'no BEGIN CERTIFICATE block found');
  const parsed = blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      throw invalid(file, what, `certificate ${i + 1}: ${(err as Error).message}`);
    }
  });
  return { pem, first: parsed[0] };
}

async function readKeyPair(files: KeyPairFiles): Promise<{ cert: Buffer; key: Buffer }> {
  const [cert, key] = await Promise.all([
    readCertificates(files.cert, 'a certificate chain'),
    readPem(files.key, 'a private key'),
  ]);
  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey(key);
  } catch (err) {
    throw invalid(files.key, 'a private key', (err as Error).message);
  }
  if (!cert.first.checkPrivateKey(keyObject)) {
    throw invalid(
      files.key,
      `the private key of ${files.cert.setting}=${files.cert.path}`,
      'it is another key',
    );
  }
  return { cert: cert.pem, key };
}

/** TLS channel credentials for the gRPC exporter; throws ConfigError for a bad file. */
export async function clientCredentialsFromFiles(files: ClientTlsFiles): Promise<ChannelCredentials> {
  const [ca, pair] = await Promise.all([
    files.ca && readCertificates(files.ca, 'CA certificates'),
    files.keyPair && readKeyPair(files.keyPair),
  ]);
  const verify = files.insecureSkipVerify
    ? { rejectUnauthorized: false, checkServerIdentity: () => undefined }
    : undefined;
  return credentials.createSsl(ca?.pem ?? null, pair?.key ?? null, pair?.cert ?? null, verify);
}

/** TLS server credentials for the collector; throws ConfigError for a bad file. */
export async function serverCredentialsFromFiles(files: ServerTlsFiles): Promise<ServerCredentials> {
  const [pair, clientCa] = await Promise.all([
    readKeyPair(files.keyPair),
    files.clientCa && readCertificates(files.clientCa, 'CA certificates'),
  ]);
  return ServerCredentials.createSsl(
    clientCa?.pem ?? null,
    [{ cert_chain: pair.cert, private_key: pair.key }],
    clientCa !== undefined,
  );
}
