/** PEM files of the gRPC exporter and collector are checked when read: a bad one is a ConfigError naming its setting. */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ConfigError } from '../../src/errors.ts';
import { clientCredentialsFromFiles, serverCredentialsFromFiles } from '../../src/export/tls.ts';
import { makeTlsFiles } from './tls-files.ts';

const FILES = makeTlsFiles({ after });

async function assertConfigError(promise: Promise<unknown>, setting: string, path: string, detail: RegExp) {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `a ConfigError, got ${String(err)}`);
    assert.equal(err.exitCode, 2);
    assert.equal(err.setting, setting);
    assert.equal(err.value, path);
    assert.match(err.message, detail);
    return true;
  });
}

async function fileWith(name: string, text: string): Promise<string> {
  const path = join((await FILES).dir, name);
  await writeFile(path, text);
  return path;
}

test('good files make client and server credentials', async () => {
  const f = await FILES;
  await clientCredentialsFromFiles({
    ca: { setting: 'TARGET_TLS_CA_CERT_PATH', path: f.ca },
    keyPair: {
      cert: { setting: 'TARGET_TLS_USER_CERT_PATH', path: f.clientCert },
      key: { setting: 'TARGET_TLS_USER_KEY_PATH', path: f.clientKey },
    },
  });
  await serverCredentialsFromFiles({
    keyPair: {
      cert: { setting: '--tls-cert', path: f.serverCert },
      key: { setting: '--tls-key', path: f.serverKey },
    },
    clientCa: { setting: '--tls-client-ca', path: f.ca },
  });
});

test('a missing CA file is a ConfigError naming the setting and the path', async () => {
  await assertConfigError(
    clientCredentialsFromFiles({ ca: { setting: 'TARGET_TLS_CA_CERT_PATH', path: '/nonexistent/ca.pem' } }),
    'TARGET_TLS_CA_CERT_PATH',
    '/nonexistent/ca.pem',
    /readable PEM file holding CA certificates \(ENOENT/,
  );
});

test('a CA file holding no certificate is refused, not read as an empty trust list', async () => {
  const path = await fileWith('not-a-ca.pem', 'hello\n');
  await assertConfigError(
    clientCredentialsFromFiles({ ca: { setting: '--target-tls-ca', path } }),
    '--target-tls-ca',
    path,
    /no BEGIN CERTIFICATE block/,
  );
});

test('a damaged certificate is refused, naming the setting', async () => {
  const path = await fileWith(
    'damaged.pem',
    '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n',
  );
  const f = await FILES;
  await assertConfigError(
    serverCredentialsFromFiles({
      keyPair: { cert: { setting: '--tls-cert', path }, key: { setting: '--tls-key', path: f.serverKey } },
    }),
    '--tls-cert',
    path,
    /certificate 1:/,
  );
});

test('a key file that holds a certificate is refused, naming the key setting', async () => {
  const f = await FILES;
  await assertConfigError(
    serverCredentialsFromFiles({
      keyPair: {
        cert: { setting: '--tls-cert', path: f.serverCert },
        key: { setting: '--tls-key', path: f.ca },
      },
    }),
    '--tls-key',
    f.ca,
    /a private key/,
  );
});

test('a key that belongs to another certificate is refused, naming both settings', async () => {
  const f = await FILES;
  await assertConfigError(
    clientCredentialsFromFiles({
      keyPair: {
        cert: { setting: 'TARGET_TLS_USER_CERT_PATH', path: f.clientCert },
        key: { setting: 'TARGET_TLS_USER_KEY_PATH', path: f.serverKey },
      },
    }),
    'TARGET_TLS_USER_KEY_PATH',
    f.serverKey,
    new RegExp(`the private key of TARGET_TLS_USER_CERT_PATH=${f.clientCert} \\(it is another key\\)`),
  );
});
