/**
 * Exporter benchmarks: encode rate of each exporter's wire format (pbflow, IPFIX over UDP and
 * TCP message sizes, JSON lines) on one core, and flows/s end to end over loopback gRPC from the
 * grpc exporter to flowtap's collector (which decodes every message into Flow objects). Each line
 * gives the figure and its ratio to the 1 M flows/s target. Figures on a shared machine are noisy.
 */
import { type RecordBatch, recordBatchOf } from '../src/codec/record-batch.ts';
import { GrpcExporter } from '../src/export/grpc.ts';
import { startCollector } from '../src/export/grpc-collector.ts';
import { IpfixEncoder } from '../src/export/ipfix/encoder.ts';
import { LINES_PER_WRITE } from '../src/export/json-lines.ts';
import { JsonRowEncoder } from '../src/export/json-rows.ts';
import { encodePbRecords } from '../src/export/pbflow/encode.ts';
import { flowsFromPbRecords } from '../src/export/pbflow/from-pb.ts';
import type { Flow } from '../src/model/flow.ts';
import { InterfaceRegistry } from '../src/model/interfaces.ts';
import { makeFlow } from '../test/helpers/flows.ts';

const TARGET_FLOWS_PER_S = 1e6;
const BATCH_FLOWS = 10_000;
const ENCODE_RUNS = 30;
const E2E_BATCHES = 40;

function line(name: string, flowsPerS: number, extra = ''): void {
  console.log(
    `${name.padEnd(44)} ${(flowsPerS / 1e6).toFixed(2).padStart(6)} M flows/s  ` +
      `x${(flowsPerS / TARGET_FLOWS_PER_S).toFixed(2)} vs target 1 M flows/s${extra}`,
  );
}

/** A realistic batch: half IPv4, half IPv6, both directions, named interfaces, large counters. */
function benchBatch(): RecordBatch {
  const names = new InterfaceRegistry();
  names.set(2, 'eth0');
  names.set(3, 'veth1a2b3c');
  const flows: Flow[] = [];
  for (let i = 0; i < BATCH_FLOWS; i++) {
    const ipv6 = i % 2 === 1;
    flows.push(
      makeFlow({
        etype: ipv6 ? 0x86dd : 0x0800,
        direction: (i >> 1) & 1,
        srcAddr: ipv6 ? `2001:db8::${(i & 0xffff).toString(16)}` : `10.${(i >> 8) & 0xff}.${i & 0xff}.1`,
        dstAddr: ipv6 ? 'fd00::1' : '192.168.0.1',
        srcPort: 1024 + (i % 60_000),
        ifIndex: 2 + (i % 2),
        bytes: 1_500 * (i + 1),
        packets: i + 1,
        timeFlowStartNs: 1_700_000_000_000_000_000n + BigInt(i) * 1_000n,
        timeFlowEndNs: 1_700_000_005_000_000_000n + BigInt(i) * 1_000n,
        tcpFlags: 0x18,
      }),
    );
  }
  return recordBatchOf(flows, names);
}

/**
 * `batch`'s flows with TCP health measured (issue 14) as the live datapath measures a busy TCP
 * host's: an RTT range and a retransmission on every flow, a handshake on half, drops on a tenth.
 */
function withHealth(batch: RecordBatch): RecordBatch {
  const flows = [...batch.flows()].map((flow, i) => ({
    ...flow,
    health: {
      rtt: { minNs: 80_000n, maxNs: 2_500_000n + BigInt(i), lastNs: 400_000n, samples: 12 },
      ...(i % 2 === 0 && { handshakeRttNs: 150_000n }),
      dropBytes: i % 10 === 0 ? 1_500 : 0,
      dropPackets: i % 10 === 0 ? 1 : 0,
      retransBytes: 1_448,
      retransPackets: 1,
      ...(i % 10 === 0 && {
        latestDrop: { timeNs: flow.timeFlowEndNs, cause: 8, tcpFlags: 0x18, tcpState: 1 },
      }),
    },
  }));
  return recordBatchOf(flows, batch.interfaces);
}

/** Best-of-`runs` flows/s of `encode` over `batch` (best run: least disturbed by other load). */
function encodeRate(batch: RecordBatch, encode: (b: RecordBatch) => unknown): number {
  for (let w = 0; w < 5; w++) encode(batch);
  let bestMs = Number.POSITIVE_INFINITY;
  for (let r = 0; r < ENCODE_RUNS; r++) {
    const t0 = performance.now();
    encode(batch);
    bestMs = Math.min(bestMs, performance.now() - t0);
  }
  return (batch.count / bestMs) * 1000;
}

async function endToEndRate(batch: RecordBatch): Promise<number> {
  const total = batch.count * E2E_BATCHES;
  let received = 0;
  let done: () => void;
  const all = new Promise<void>((resolve) => {
    done = resolve;
  });
  const collector = await startCollector({
    port: 0,
    onRecords: (flows) => {
      received += flows.length;
      if (received >= total) done();
    },
  });
  const exporter = new GrpcExporter({
    host: '127.0.0.1',
    port: collector.port,
    maxQueuedBatches: E2E_BATCHES,
  });
  const t0 = performance.now();
  for (let k = 0; k < E2E_BATCHES; k++) exporter.export(batch);
  await all;
  const ms = performance.now() - t0;
  await exporter.stop();
  await collector.close();
  return (total / ms) * 1000;
}

const batch = benchBatch();
const udp = new IpfixEncoder({ maxMessageBytes: 1400 });
const tcp = new IpfixEncoder({ maxMessageBytes: 65_535 });
line(
  'pbflow encode (encodePbRecords, 10k/msg)',
  encodeRate(batch, (b) => encodePbRecords(b, 0, b.count)),
);
line(
  'ipfix encode, 1400-byte messages (udp)',
  encodeRate(batch, (b) => udp.encodeBatch(b, 0)),
);
line(
  'ipfix encode, 65535-byte messages (tcp)',
  encodeRate(batch, (b) => tcp.encodeBatch(b, 0)),
);
const jsonRows = new JsonRowEncoder();
line(
  `json lines (JsonRowEncoder, ${LINES_PER_WRITE} per write)`,
  encodeRate(batch, (b) => {
    for (let start = 0; start < b.count; start += LINES_PER_WRITE) {
      jsonRows.release(jsonRows.encode(b, start, Math.min(b.count, start + LINES_PER_WRITE)));
    }
  }),
);

// The same encoders on flows that all carry TCP health, against the figures above (same run).
const healthBatch = withHealth(batch);
const healthCases: [string, (b: RecordBatch) => unknown][] = [
  ['pbflow encode', (b) => encodePbRecords(b, 0, b.count)],
  ['ipfix encode, 1400-byte messages', (b) => udp.encodeBatch(b, 0)],
  [
    'json lines',
    (b) => {
      for (let start = 0; start < b.count; start += LINES_PER_WRITE) {
        jsonRows.release(jsonRows.encode(b, start, Math.min(b.count, start + LINES_PER_WRITE)));
      }
    },
  ],
];
for (const [name, encode] of healthCases) {
  const plain = encodeRate(batch, encode);
  const health = encodeRate(healthBatch, encode);
  line(`${name}, every flow with TCP health`, health, `  x${(health / plain).toFixed(2)} vs without health`);
}

const message = encodePbRecords(batch, 0, batch.count);
line(
  'collector decode (flowsFromPbRecords)',
  encodeRate(batch, () => flowsFromPbRecords(message)),
);
line(
  'grpc end to end, loopback, to flowtap collect',
  await endToEndRate(batch),
  ` (${E2E_BATCHES} batches of ${BATCH_FLOWS}, collector decodes to Flow objects)`,
);
