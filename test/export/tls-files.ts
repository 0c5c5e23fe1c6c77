/**
 * A throwaway CA with a server certificate for `localhost` and 127.0.0.1 and a client
 * certificate, made by openssl. P-256 keys: generated at once, where RSA takes a second each.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];

/** Paths of the PEM files. */
export interface TlsFiles {
  /** The temporary directory holding them (removed when the test ends). */
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

async function signedCert(dir: string, name: string, subject: string, extensions: string): Promise<void> {
  const ext = join(dir, `${name}.ext`);
  await run('sh', ['-c', `printf '%s\\n' "$1" > "$2"`, 'sh', extensions, ext]);
  await run('openssl', [
    'req',
    ...EC_KEY,
    '-nodes',
    '-keyout',
    join(dir, `${name}.key`),
    '-subj',
    subject,
    '-out',
    join(dir, `${name}.csr`),
  ]);
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    join(dir, `${name}.csr`),
    '-CA',
    join(dir, 'ca.pem'),
    '-CAkey',
    join(dir, 'ca.key'),
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    ext,
    '-out',
    join(dir, `${name}.pem`),
  ]);
}

/** Makes the files in a temporary directory removed when the test ends. */
export async function makeTlsFiles(t: { after: (fn: () => unknown) => void }): Promise<TlsFiles> {
  const dir = await mkdtemp(join(tmpdir(), 'flowtap-tls-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await run('openssl', [
    'req',
    '-x509',
    ...EC_KEY,
    '-nodes',
    '-keyout',
    join(dir, 'ca.key'),
    '-subj',
    '/CN=flowtap test CA',
    '-days',
    '2',
    '-out',
    join(dir, 'ca.pem'),
  ]);
  await signedCert(dir, 'server', '/CN=localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1');
  await signedCert(dir, 'client', '/CN=flowtap agent', 'extendedKeyUsage=clientAuth');
  return {
    dir,
    ca: join(dir, 'ca.pem'),
    serverCert: join(dir, 'server.pem'),
    serverKey: join(dir, 'server.key'),
    clientCert: join(dir, 'client.pem'),
    clientKey: join(dir, 'client.key'),
  };
}
