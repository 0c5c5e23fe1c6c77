/**
 * End to end through the CLI: an agent's gRPC exporter → `flowtap collect --to clickhouse://...`
 * → Debian's clickhouse-server → `flowtap query top talkers --store clickhouse://...`, which must
 * total exactly what was exported; and the collector's /health and /metrics while it runs.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { recordBatchOf } from '../../src/codec/record-batch.ts';
import { GrpcExporter } from '../../src/export/grpc.ts';
import type { Flow } from '../../src/model/flow.ts';
import { runCli } from '../helpers/cli.ts';
import { clickhouseAvailable, startClickHouse } from '../helpers/clickhouse.ts';
import { makeFlow } from '../helpers/flows.ts';
import { startCollectorProcess } from './collector-process.ts';

const HOSTS = ['10.1.0.1', '10.1.0.2', 'fd00::7'];
const FLOWS_PER_HOST = 400;
const POLL_MS = 50;

function flows(): Flow[] {
  const out: Flow[] = [];
  HOSTS.forEach((host, h) => {
    for (let i = 0; i < FLOWS_PER_HOST; i++) {
      const v6 = host.includes(':');
      out.push(
        makeFlow({
          etype: v6 ? 0x86dd : 0x0800,
          srcAddr: host,
          dstAddr: v6 ? 'fd00::1' : '10.9.9.9',
          srcPort: 1000 + i,
          bytes: (h + 1) * 1000 + i,
          packets: h + 1,
        }),
      );
    }
  });
  return out;
}

test('flows a gRPC agent exports reach ClickHouse through collect, and query --store answers with their totals', {
  skip: !clickhouseAvailable() && 'clickhouse-server is not installed',
}, async (t) => {
  const server = await startClickHouse(t);
  const url = server.storeUrl('e2e');
  const collector = startCollectorProcess(t, ['--port', '0', '--to', url, '--metrics-port', '0']);
  const listening = await collector.waitForLog(
    (l) => typeof l.port === 'number' && /listening/.test(String(l.msg)),
    'listening',
  );
  const metricsLog = await collector.waitForLog((l) => /metrics on/.test(String(l.msg)), 'metrics on');
  const sent = flows();
  const exporter = new GrpcExporter({ host: '127.0.0.1', port: listening.port as number });
  t.after(() => exporter.stop(0));
  exporter.export(recordBatchOf(sent.slice(0, 600)));
  exporter.export(recordBatchOf(sent.slice(600)));
  const health = `http://127.0.0.1:${metricsLog.port}/health`;
  for (;;) {
    const body = (await (await fetch(health)).json()) as { sinks: { stored: number }[] };
    if (body.sinks[0].stored === sent.length) break;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  const healthResponse = await fetch(health);
  assert.equal(healthResponse.status, 200);
  assert.equal(((await healthResponse.json()) as { status: string }).status, 'ok');
  const metrics = await (await fetch(`http://127.0.0.1:${metricsLog.port}/metrics`)).text();
  assert.match(metrics, new RegExp(`flowtap_collect_flows_received_total\\{source="grpc"\\} ${sent.length}`));
  assert.match(metrics, /flowtap_collect_insert_seconds_count\{sink="clickhouse"\} [1-9]/);

  const r = await runCli(['query', 'top talkers', '--store', url, '--output', 'json']);
  assert.equal(r.code, 0, r.stderr);
  const rows = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { address: string; bytes: number; packets: number; flows: number });
  const expected = HOSTS.map((host) => {
    const mine = sent.filter((f) => f.srcPort >= 1000 && f.packets === HOSTS.indexOf(host) + 1);
    return {
      address: host,
      bytes: mine.reduce((n, f) => n + f.bytes, 0),
      packets: mine.reduce((n, f) => n + f.packets, 0),
      flows: mine.length,
    };
  }).sort((x, y) => y.bytes - x.bytes);
  assert.deepEqual(rows, expected);

  collector.child.kill('SIGTERM');
  assert.equal(await collector.exited(), 0);
});
