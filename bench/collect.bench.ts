/**
 * Collector decode: flows/s from serialized pbflow to something a sink can store, through the
 * generic path (protobuf-es, then a Flow object per record: the baseline, what `flowtap collect`
 * used before) and through the hand-written decoder straight into RecordBatch rows (target: 1 M
 * flows/s on one core), for gRPC bodies (`Records` of 1000 flows) and Kafka values (one `Record`
 * each). Best of several runs: the machine is shared. Beside them, the IPFIX decoder of
 * `collect --from ipfix` on flowtap's own messages (UDP-sized, templates already known).
 */

import { IpfixDecoder } from '../src/export/ipfix/decode.ts';
import { IpfixEncoder } from '../src/export/ipfix/encoder.ts';
import { ExporterSession } from '../src/export/ipfix/exporter-session.ts';
import { decodePbRecords, PbflowBatchDecoder } from '../src/export/pbflow/decode.ts';
import { encodePbRecordList, encodePbRecords } from '../src/export/pbflow/encode.ts';
import { flowsFromPbRecords } from '../src/export/pbflow/from-pb.ts';
import { variedBatch } from '../test/export/ipfix/flows.ts';

const TARGET_FLOWS_PER_S = 1e6;
const BATCH_FLOWS = 1000;
/** variedFlow builds addresses from its index, valid below 256. */
const DISTINCT_FLOWS = 250;
const MESSAGES = 50;
const RUNS = 15;

/** Flows per second of the fastest of RUNS runs of `fn` over `flows` flows. */
function bestRate(flows: number, fn: () => void): number {
  for (let r = 0; r < 3; r++) fn(); // warm up the JIT
  let bestMs = Number.POSITIVE_INFINITY;
  for (let r = 0; r < RUNS; r++) {
    const t0 = performance.now();
    fn();
    bestMs = Math.min(bestMs, performance.now() - t0);
  }
  return (flows / bestMs) * 1000;
}

function line(name: string, flowsPerS: number, baseline: number): void {
  console.log(
    `${name.padEnd(52)} ${(flowsPerS / 1e6).toFixed(2).padStart(6)} M flows/s  ` +
      `x${(flowsPerS / baseline).toFixed(2)} vs generic  x${(flowsPerS / TARGET_FLOWS_PER_S).toFixed(2)} vs target 1 M`,
  );
}

const batches = Array.from({ length: BATCH_FLOWS / DISTINCT_FLOWS }, () => variedBatch(DISTINCT_FLOWS));
const body = Buffer.concat(batches.map((b) => encodePbRecords(b, 0, b.count)));
const values = batches.flatMap((b) => encodePbRecordList(b, 0, b.count));
const flows = MESSAGES * BATCH_FLOWS;

const generic = bestRate(flows, () => {
  for (let m = 0; m < MESSAGES; m++) flowsFromPbRecords(body);
});
line('generic: flowsFromPbRecords (gRPC body)', generic, generic);
line(
  'hand-written: decodePbRecords (gRPC body)',
  bestRate(flows, () => {
    for (let m = 0; m < MESSAGES; m++) decodePbRecords(body);
  }),
  generic,
);
const decoder = new PbflowBatchDecoder(BATCH_FLOWS);
line(
  'hand-written: appendRecord per Kafka value',
  bestRate(flows, () => {
    for (let m = 0; m < MESSAGES; m++) {
      for (const value of values) decoder.appendRecord(value);
      decoder.finish();
    }
  }),
  generic,
);

const encoder = new IpfixEncoder({ maxMessageBytes: 1400 });
const ipfixMessages = batches.flatMap((b) => {
  const { bytes, messageEnds } = encoder.encodeBatch(b, 1_700_000_000);
  return messageEnds.map((end, k) => bytes.subarray(k === 0 ? 0 : messageEnds[k - 1], end));
});
const ipfixDecoder = new IpfixDecoder({ drop: () => {}, onBatch: () => {}, batchRows: BATCH_FLOWS });
const session = new ExporterSession('bench', new Uint8Array(16));
for (const m of encoder.templateMessages(1_700_000_000)) ipfixDecoder.decode(session, m, 0, m.length);
line(
  'IPFIX decoder: UDP-sized messages of flowtap',
  bestRate(flows, () => {
    for (let m = 0; m < MESSAGES; m++) {
      for (const message of ipfixMessages) ipfixDecoder.decode(session, message, 0, message.length);
      ipfixDecoder.flush();
    }
  }),
  generic,
);
