/**
 * The grpc exporter and the collector over TLS and mutual TLS, with certificates openssl makes
 * for each test: flows cross intact, and every refused handshake reaches `onTransportError` as
 * one line naming the collector and the setting that fixes it, while the exporter keeps retrying.
 */
import assert from 'node:assert/strict';
import { after, type TestContext, test } from 'node:test';
import { recordBatchOf } from '../../src/codec/record-batch.ts';
import { TlsHandshakeError } from '../../src/errors.ts';
import { GrpcExporter } from '../../src/export/grpc.ts';
import { startCollector } from '../../src/export/grpc-collector.ts';
import {
  type ClientTlsFiles,
  clientCredentialsFromFiles,
  serverCredentialsFromFiles,
} from '../../src/export/tls.ts';
import type { Flow } from '../../src/model/flow.ts';
import { makeFlow } from '../helpers/flows.ts';
import { makeTlsFiles, type TlsFiles } from './tls-files.ts';

const FLOWS = [
  makeFlow({ srcPort: 1001 }),
  makeFlow({ etype: 0x86dd, srcAddr: 'fd00::1', dstAddr: 'fd00::2', srcPort: 1002, bytes: 2 ** 40 }),
];

/** One CA and certificate set for the whole file. */
const FILES = makeTlsFiles({ after });

const pem = (setting: string, path: string) => ({ setting, path });

/** The agent's TLS: trusting the test CA and, with `clientCert`, presenting the client certificate. */
function agentTls(files: TlsFiles, clientCert: boolean): ClientTlsFiles {
  return {
    ca: pem('TARGET_TLS_CA_CERT_PATH', files.ca),
    keyPair: clientCert
      ? {
          cert: pem('TARGET_TLS_USER_CERT_PATH', files.clientCert),
          key: pem('TARGET_TLS_USER_KEY_PATH', files.clientKey),
        }
      : undefined,
  };
}

/** A collector serving the test certificate (requiring client certificates when `mutual`), recording flows. */
async function tlsCollector(
  t: TestContext,
  files: TlsFiles | undefined,
  options: { mutual?: boolean; port?: number; host?: string } = {},
) {
  const received: Flow[] = [];
  let arrived!: () => void;
  const allArrived = new Promise<void>((resolve) => {
    arrived = resolve;
  });
  const credentials =
    files &&
    (await serverCredentialsFromFiles({
      keyPair: { cert: pem('--tls-cert', files.serverCert), key: pem('--tls-key', files.serverKey) },
      clientCa: options.mutual ? pem('--tls-client-ca', files.ca) : undefined,
    }));
  const collector = await startCollector({
    host: options.host,
    port: options.port ?? 0,
    credentials,
    onRecords: (flows) => {
      received.push(...flows);
      if (received.length >= FLOWS.length) arrived();
    },
  });
  t.after(() => collector.close(0));
  return { collector, received, allArrived };
}

/** An exporter to `port` with `tls`, and the first transport error it reports. */
async function agent(t: TestContext, port: number, tls: ClientTlsFiles | undefined, host = 'localhost') {
  let reported!: (err: Error) => void;
  const firstError = new Promise<Error>((resolve) => {
    reported = resolve;
  });
  const exporter = new GrpcExporter({
    host,
    port,
    credentials: tls && (await clientCredentialsFromFiles(tls)),
    initialBackoffMs: 20,
    maxBackoffMs: 100,
    onTransportError: (err) => reported(err),
  });
  t.after(() => exporter.stop(0));
  return { exporter, firstError };
}

/** What the collector gives back for a sent flow: pbflow carries the interface by name only. */
const receivedForm = (flow: Flow): Flow => ({ ...flow, ifIndex: 0, interface: '' });

function assertHandshakeError(err: Error, problem: string, target: string, fix: RegExp): void {
  assert.ok(err instanceof TlsHandshakeError, `a TlsHandshakeError, got ${err.message}`);
  assert.equal(err.problem, problem);
  assert.equal(err.target, target);
  assert.ok(err.message.includes(`collector ${target}`), err.message);
  assert.match(err.message, fix);
  assert.doesNotMatch(err.message, /\n/, 'one line');
}

test('flows sent to a TLS collector arrive intact, its certificate checked against the CA file', async (t) => {
  const files = await FILES;
  const { collector, received, allArrived } = await tlsCollector(t, files);
  const { exporter } = await agent(t, collector.port, agentTls(files, false));
  exporter.export(recordBatchOf(FLOWS));
  await allArrived;
  assert.deepEqual(received, FLOWS.map(receivedForm));
  await exporter.stop();
  assert.deepEqual(exporter.retries, { tls: 0, transport: 0 });
});

test('a collector requiring client certificates accepts an agent presenting one', async (t) => {
  const files = await FILES;
  const { collector, received, allArrived } = await tlsCollector(t, files, { mutual: true });
  const { exporter } = await agent(t, collector.port, agentTls(files, true));
  exporter.export(recordBatchOf(FLOWS));
  await allArrived;
  assert.deepEqual(received, FLOWS.map(receivedForm));
});

test('a collector requiring client certificates refuses an agent without one, which is told what to set', async (t) => {
  const files = await FILES;
  const { collector, received } = await tlsCollector(t, files, { mutual: true });
  const { exporter, firstError } = await agent(t, collector.port, agentTls(files, false));
  exporter.export(recordBatchOf(FLOWS));
  assertHandshakeError(
    await firstError,
    'client-certificate-required',
    `localhost:${collector.port}`,
    /requires a client certificate.*TARGET_TLS_USER_CERT_PATH and TARGET_TLS_USER_KEY_PATH/,
  );
  assert.ok(exporter.retries.tls >= 1, 'counted as a TLS retry');
  assert.deepEqual(received, []);
});

test('an agent that does not trust the collector’s CA refuses its certificate and is told to set the CA', async (t) => {
  const files = await FILES;
  const { collector, received } = await tlsCollector(t, files);
  // No CA file: the system roots, which do not hold the test CA.
  const { exporter, firstError } = await agent(t, collector.port, {});
  exporter.export(recordBatchOf(FLOWS));
  assertHandshakeError(
    await firstError,
    'server-certificate-untrusted',
    `localhost:${collector.port}`,
    /is not trusted \(unable to verify the first certificate\); set TARGET_TLS_CA_CERT_PATH/,
  );
  assert.ok(exporter.retries.tls >= 1);
  assert.deepEqual(received, []);
});

test('an agent refused for its missing certificate keeps retrying and delivers once the collector lets it in', async (t) => {
  const files = await FILES;
  const strict = await tlsCollector(t, files, { mutual: true });
  const port = strict.collector.port;
  const { exporter, firstError } = await agent(t, port, agentTls(files, false));
  exporter.export(recordBatchOf(FLOWS));
  await firstError;
  await strict.collector.close(0);
  const lenient = await tlsCollector(t, files, { port });
  await lenient.allArrived;
  assert.deepEqual(lenient.received, FLOWS.map(receivedForm));
  assert.equal(exporter.stats.flowsFailed, 0);
});

test('an agent speaking TLS to a plaintext collector is told the collector does not speak TLS', async (t) => {
  const files = await FILES;
  const { collector } = await tlsCollector(t, undefined);
  const { exporter, firstError } = await agent(t, collector.port, agentTls(files, false));
  exporter.export(recordBatchOf(FLOWS));
  assertHandshakeError(await firstError, 'not-tls', `localhost:${collector.port}`, /does not speak TLS/);
});

test('a collector certificate that does not name the target host is refused, naming it', async (t) => {
  const files = await FILES;
  // The certificate names localhost and 127.0.0.1 only; 127.0.0.2 is loopback too.
  const { collector } = await tlsCollector(t, files, { host: '127.0.0.2' });
  const { exporter, firstError } = await agent(t, collector.port, agentTls(files, false), '127.0.0.2');
  exporter.export(recordBatchOf(FLOWS));
  assertHandshakeError(
    await firstError,
    'server-name-mismatch',
    `127.0.0.2:${collector.port}`,
    /does not name that host/,
  );
});

test('insecureSkipVerify accepts a collector certificate no CA vouches for', async (t) => {
  const files = await FILES;
  const { collector, received, allArrived } = await tlsCollector(t, files);
  const { exporter } = await agent(t, collector.port, { insecureSkipVerify: true });
  exporter.export(recordBatchOf(FLOWS));
  await allArrived;
  assert.equal(received.length, FLOWS.length);
});
