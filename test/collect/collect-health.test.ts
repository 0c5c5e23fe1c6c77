/**
 * TCP health through `flowtap collect`: an agent's pbflow records with RTTs, drops and
 * retransmissions printed as JSON lines (drop reasons named by this host's kernel) and stored in
 * the DuckDB store, where `flowtap query tcp health` finds them.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { recordBatchOf } from '../../src/codec/record-batch.ts';
import { loadDropReasons } from '../../src/ebpf/drop-reasons.ts';
import { GrpcExporter } from '../../src/export/grpc.ts';
import { flowToJson } from '../../src/model/flow.ts';
import { runCli } from '../helpers/cli.ts';
import { makeFlow } from '../helpers/flows.ts';
import { FULL_HEALTH, RETRANS_ONLY } from '../helpers/health.ts';
import { startCollectorProcess } from './collector-process.ts';

const T0 = 1_700_000_000_000_000_000n;

test('collect prints and stores the health of the flows it receives, and query tcp health ranks them', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-collect-health-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const collector = startCollectorProcess(t, ['--port', '0', '--to', 'json', '--to', `store:${dir}`]);
  const listening = await collector.waitForLog(
    (l) => typeof l.port === 'number' && /listening/.test(String(l.msg)),
    'listening',
  );
  const flows = [
    makeFlow({ timeFlowEndNs: T0, dstAddr: '10.0.0.9', dstPort: 443, health: FULL_HEALTH }),
    makeFlow({ timeFlowEndNs: T0, dstAddr: '10.0.0.7', dstPort: 80, health: RETRANS_ONLY }),
    makeFlow({ timeFlowEndNs: T0, dstAddr: '10.0.0.5', dstPort: 22 }),
  ];
  // collector-process.ts's own listener, added first, has appended each chunk before this one runs.
  const printed = new Promise<void>((resolve) => {
    collector.child.stdout?.on('data', () => {
      if (collector.stdout().split('\n').length > flows.length) resolve();
    });
  });
  const exporter = new GrpcExporter({ host: '127.0.0.1', port: listening.port as number });
  t.after(() => exporter.stop(0));
  exporter.export(recordBatchOf(flows));
  await printed;
  const names = loadDropReasons();
  assert.equal(collector.stdout(), flows.map((f) => `${flowToJson(f, undefined, names)}\n`).join(''));
  collector.child.kill('SIGTERM');
  assert.equal(await collector.exited(), 0);

  const r = await runCli(['query', 'tcp', 'health', '--store-path', dir, '--output', 'json']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(
    r.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line)),
    [
      {
        address: '10.0.0.9',
        port: 443,
        protocol: 'TCP',
        flows: 1,
        dropped_packets: 2,
        dropped_bytes: 3_000,
        retransmitted: 2,
        min_rtt_ns: 1_500_000,
        max_rtt_ns: 42_000_000,
        max_handshake_ns: 310_000,
      },
      {
        address: '10.0.0.7',
        port: 80,
        protocol: 'TCP',
        flows: 1,
        dropped_packets: 0,
        dropped_bytes: 0,
        retransmitted: 3,
        min_rtt_ns: 0,
        max_rtt_ns: 0,
        max_handshake_ns: 0,
      },
    ],
  );
});
