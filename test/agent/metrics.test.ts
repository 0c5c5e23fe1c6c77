/** /metrics figures that come from an exporter's own counters. */
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { AgentMetrics, healthSnapshot } from '../../src/agent/metrics.ts';
import { Pipeline } from '../../src/agent/pipeline.ts';
import { GrpcExporter } from '../../src/export/grpc.ts';
import { startCollector } from '../../src/export/grpc-collector.ts';
import { clientCredentialsFromFiles, serverCredentialsFromFiles } from '../../src/export/tls.ts';
import { makeTlsFiles } from '../export/tls-files.ts';
import { batchOf } from './fakes.ts';

function metricsOf(pipeline: Pipeline): AgentMetrics {
  return new AgentMetrics(() =>
    healthSnapshot({
      startedAtMs: Date.now(),
      pipeline,
      captureStats: () => undefined,
      attachedInterfaces: () => [],
      interfaceCounters: { attaches: 0, detaches: 0, attachFailures: 0 },
      filter: 'none',
      unhandledRejections: new Map(),
    }),
  );
}

/** A grpc exporter without a client certificate, refused by a collector that requires one. */
async function refusedExporter(t: TestContext): Promise<GrpcExporter> {
  const files = await makeTlsFiles(t);
  const collector = await startCollector({
    port: 0,
    onRecords: () => {},
    credentials: await serverCredentialsFromFiles({
      keyPair: {
        cert: { setting: '--tls-cert', path: files.serverCert },
        key: { setting: '--tls-key', path: files.serverKey },
      },
      clientCa: { setting: '--tls-client-ca', path: files.ca },
    }),
  });
  t.after(() => collector.close(0));
  let refused!: () => void;
  const firstRefusal = new Promise<void>((resolve) => {
    refused = resolve;
  });
  const exporter = new GrpcExporter({
    host: 'localhost',
    port: collector.port,
    credentials: await clientCredentialsFromFiles({
      ca: { setting: 'TARGET_TLS_CA_CERT_PATH', path: files.ca },
    }),
    initialBackoffMs: 20,
    maxBackoffMs: 100,
    onTransportError: () => refused(),
  });
  t.after(() => exporter.stop(0));
  exporter.export(batchOf(2));
  await firstRefusal;
  return exporter;
}

test('refused TLS handshakes are counted on /metrics as retried attempts of the exporter', async (t) => {
  const exporter = await refusedExporter(t);
  const pipeline = new Pipeline({ buffersLength: 1, cacheMaxFlows: 10, cacheActiveTimeoutMs: 1000 }, [
    exporter,
  ]);
  const text = await metricsOf(pipeline).render();
  const tls = /^flowtap_export_retries_total\{exporter="grpc",reason="tls"\} (\d+)$/m.exec(text);
  assert.ok(tls && Number(tls[1]) >= 1, text);
  assert.match(text, /^flowtap_export_retries_total\{exporter="grpc",reason="transport"\} 0$/m);
  assert.match(text, /^flowtap_export_flows_total\{exporter="grpc",result="ok"\} 0$/m);
});
