/** `flowtap collect` end to end: a grpc exporter sends, the command prints reference JSON lines. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { recordBatchOf } from '../../src/codec/record-batch.ts';
import { GrpcExporter } from '../../src/export/grpc.ts';
import { flowToJson } from '../../src/model/flow.ts';
import { makeFlow } from '../helpers/flows.ts';

const CLI = new URL('../../src/cli.ts', import.meta.url).pathname;

test('flowtap collect prints the flows it receives as reference JSON lines and stops on SIGTERM', async (t) => {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'collect', '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const exited = once(child, 'exit');
  let stderr = '';
  const listening = new Promise<number>((resolve) => {
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(stderr);
      if (m) resolve(Number(m[1]));
    });
  });
  const port = await Promise.race([
    listening,
    exited.then(() => {
      throw new Error(`collect exited: ${stderr}`);
    }),
  ]);

  const flows = [makeFlow(), makeFlow({ etype: 0x86dd, srcAddr: 'fd00::1', dstAddr: 'fd00::2', srcPort: 5 })];
  let stdout = '';
  const printed = new Promise<void>((resolve) => {
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      if (stdout.split('\n').length > flows.length) resolve();
    });
  });
  const exporter = new GrpcExporter({ host: '127.0.0.1', port });
  t.after(() => exporter.stop(0));
  exporter.export(recordBatchOf(flows));
  await printed;
  assert.equal(stdout, flows.map((f) => `${flowToJson(f)}\n`).join(''));

  child.kill('SIGTERM');
  const [code] = await exited;
  assert.equal(code, 0);
});
