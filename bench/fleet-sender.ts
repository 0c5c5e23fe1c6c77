/**
 * The agents of bench/fleet.bench.ts, in a process of their own so the collector's process does
 * only the collector's work: `node --import tsx bench/fleet-sender.ts grpc|ipfix PORT FLOWS AGENTS`
 * sends FLOWS flows in batches of 1000 through AGENTS exporters (flowtap's gRPC exporter, or its
 * IPFIX exporter over TCP) to 127.0.0.1:PORT, then exits once every batch was sent.
 */
import { recordBatchOf } from '../src/codec/record-batch.ts';
import type { QueuedExporter } from '../src/export/exporter.ts';
import { GrpcExporter } from '../src/export/grpc.ts';
import { IpfixTcpExporter } from '../src/export/ipfix/tcp.ts';
import { variedFlow } from '../test/export/ipfix/flows.ts';

const BATCH_FLOWS = 1000;

const [kind, portText, flowsText, agentsText] = process.argv.slice(2);
const port = Number(portText);
const batches = Number(flowsText) / BATCH_FLOWS;
const agents = Number(agentsText);
const batch = recordBatchOf(Array.from({ length: BATCH_FLOWS }, (_, i) => variedFlow(i % 250)));
const exporters: QueuedExporter[] = Array.from({ length: agents }, () =>
  kind === 'grpc'
    ? new GrpcExporter({ host: '127.0.0.1', port, maxQueuedBatches: batches })
    : new IpfixTcpExporter({ host: '127.0.0.1', port, maxQueuedBatches: batches }),
);
for (let b = 0; b < batches; b++) exporters[b % agents].export(batch);
await Promise.all(exporters.map((exporter) => exporter.whenIdle()));
await Promise.all(exporters.map((exporter) => exporter.stop()));
