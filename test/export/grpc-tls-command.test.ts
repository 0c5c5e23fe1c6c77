/**
 * TLS through the command line: `flowtap read -e grpc --target-tls-*` into `flowtap collect
 * --tls-*`, and a bad PEM file stopping either command with exit 2 before anything is sent.
 */
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, type TestContext, test } from 'node:test';
import { classicPcap } from '../capture/pcap/capture-files.ts';
import { runCli } from '../helpers/cli.ts';
import { PACKET_VECTORS } from '../vectors/packets.ts';
import { makeTlsFiles } from './tls-files.ts';

const CLI = new URL('../../src/cli.ts', import.meta.url).pathname;
const FILES = makeTlsFiles({ after });
const TCP4 = Buffer.from(PACKET_VECTORS[0].frame, 'hex');

/** A capture of one TCP flow of 3 packets. */
async function captureFile(): Promise<string> {
  const path = join((await FILES).dir, 'one-flow.pcap');
  await writeFile(
    path,
    classicPcap([0, 1, 2].map((s) => ({ frame: TCP4, seconds: 1_700_000_000 + s, fraction: 0 }))),
  );
  return path;
}

/** `flowtap collect --port 0 ...args`, resolved once it listens, killed when the test ends. */
async function collectCommand(t: TestContext, args: string[], env: NodeJS.ProcessEnv = {}) {
  const child: ChildProcessWithoutNullStreams = spawn(
    process.execPath,
    ['--import', 'tsx', CLI, 'collect', '--port', '0', ...args],
    { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } },
  );
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stderr = '';
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  const exited = once(child, 'exit');
  const listening = new Promise<{ port: number; line: string }>((resolve) => {
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      const m = /"msg":"(listening on 127\.0\.0\.1:(\d+)[^"]*)"/.exec(stderr);
      if (m) resolve({ port: Number(m[2]), line: m[1] });
    });
  });
  const { port, line } = await Promise.race([
    listening,
    exited.then(() => {
      throw new Error(`collect exited: ${stderr}`);
    }),
  ]);
  return { port, line, stdout: () => stdout };
}

test('read sends a capture’s flows over mutual TLS to collect, which prints them', async (t) => {
  const f = await FILES;
  const collector = await collectCommand(t, [
    '--tls-cert',
    f.serverCert,
    '--tls-key',
    f.serverKey,
    '--tls-client-ca',
    f.ca,
  ]);
  assert.match(collector.line, /\(TLS, client certificates required\)$/);
  const read = await runCli(
    [
      'read',
      await captureFile(),
      '-e',
      'grpc',
      '--target',
      `localhost:${collector.port}`,
      '--target-tls-ca',
      f.ca,
    ],
    { env: { TARGET_TLS_USER_CERT_PATH: f.clientCert, TARGET_TLS_USER_KEY_PATH: f.clientKey } },
  );
  assert.equal(read.code, 0, read.stderr);
  assert.match(read.stderr, /3 packets read, 3 counted into 1 flows\n$/);
  // The collector answers after printing, so the flow is on its stdout once read has exited 0.
  const printed = collector.stdout().trim().split('\n');
  assert.equal(printed.length, 1);
  assert.equal(JSON.parse(printed[0]).Packets, 3);
});

test('read without a client certificate is refused by collect requiring one, in one line saying what to set', async (t) => {
  const f = await FILES;
  const collector = await collectCommand(t, [], {
    COLLECTOR_TLS_CERT_PATH: f.serverCert,
    COLLECTOR_TLS_KEY_PATH: f.serverKey,
    COLLECTOR_TLS_CLIENT_CA_PATH: f.ca,
  });
  const target = `localhost:${collector.port}`;
  const read = await runCli([
    'read',
    await captureFile(),
    '-e',
    'grpc',
    '--target',
    target,
    '--target-tls-ca',
    f.ca,
    '--export-flush-timeout',
    '1s',
  ]);
  assert.equal(read.code, 1, read.stderr);
  const refusals = read.stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { msg: string; err?: unknown })
    .filter((log) => log.msg.includes('TLS handshake'));
  assert.ok(refusals.length >= 1, read.stderr);
  for (const { msg, err } of refusals) {
    assert.equal(err, undefined, 'no error object, so no stack trace');
    assert.match(
      msg,
      new RegExp(
        `^collector ${target} refused the TLS handshake: it requires a client certificate .*` +
          'TARGET_TLS_USER_CERT_PATH and TARGET_TLS_USER_KEY_PATH \\(--target-tls-cert, --target-tls-key\\); retrying with backoff$',
      ),
    );
  }
  // The error first, then the summary line (issue 18: the summary comes after the error).
  assert.match(
    read.stderr,
    /flowtap: grpc export: 1 flows were not delivered.*\nflowtap read: .*1 flows not delivered by grpc\n$/,
  );
  assert.equal(collector.stdout(), '');
});

test('read with a --target-tls-ca that does not exist exits 2 naming the flag and the path', async () => {
  const read = await runCli([
    'read',
    await captureFile(),
    '-e',
    'grpc',
    '--target',
    'localhost:1',
    '--target-tls-ca',
    '/nonexistent/ca.pem',
  ]);
  assert.equal(read.code, 2, read.stderr);
  assert.match(
    read.stderr,
    /^flowtap: invalid --target-tls-ca="\/nonexistent\/ca.pem": expected a readable PEM file/,
  );
  assert.doesNotMatch(read.stderr, /\n\s+at /, 'no stack trace');
});

test('collect with a COLLECTOR_TLS_CERT_PATH that is not a certificate exits 2 naming the variable', async () => {
  const f = await FILES;
  const run = await runCli(['collect', '--port', '0', '--tls-key', f.serverKey], {
    env: { COLLECTOR_TLS_CERT_PATH: f.serverKey },
  });
  assert.equal(run.code, 2, run.stderr);
  assert.match(
    run.stderr,
    new RegExp(
      `^flowtap: invalid COLLECTOR_TLS_CERT_PATH="${f.serverKey}": expected a readable PEM file holding a certificate chain \\(no BEGIN CERTIFICATE block found\\)\\n$`,
    ),
  );
});
