/**
 * The web view's cost: aggregating evicted batches (FlowAggregate.add, what `export()` does on
 * the pipeline's path) and building one snapshot of a full window (what each push costs per
 * filter). Baseline: the load of 100 000 flows a minute (1 667 flows/s) for aggregation,
 * and the 1 s push period for snapshots; the ratio says how many times over the budget fits.
 */
import { RecordBatch, recordBatchOf } from '../src/codec/record-batch.ts';
import { V2, V2_RECORD_BYTES } from '../src/codec/v2-layout.ts';
import { InterfaceRegistry } from '../src/model/interfaces.ts';
import { FlowAggregate } from '../src/web/aggregate.ts';
import { buildSnapshot, NO_FILTER, parseWebFilter, type WebFilter } from '../src/web/snapshot.ts';
import { makeFlow } from '../test/helpers/flows.ts';

const BATCH_FLOWS = 1000;
const T0 = 1_700_000_000;
const REQUIRED_FLOWS_PER_S = 100_000 / 60;
const PUSH_PERIOD_MS = 1000;

const NAMES = new InterfaceRegistry();
for (let i = 1; i <= 4; i++) NAMES.set(i, `eth${i - 1}`);

/** `total` flow records over `seconds` seconds, `distinct` different flows, in batches of 1000. */
function batches(total: number, distinct: number, seconds: number): RecordBatch[] {
  const row = recordBatchOf([makeFlow({ bytes: 100 })]).bytes.subarray(0, V2_RECORD_BYTES);
  const out: RecordBatch[] = [];
  for (let start = 0; start < total; start += BATCH_FLOWS) {
    const count = Math.min(BATCH_FLOWS, total - start);
    const buf = Buffer.alloc(count * V2_RECORD_BYTES);
    for (let i = 0; i < count; i++) {
      const o = i * V2_RECORD_BYTES;
      const n = start + i;
      const id = n % distinct;
      row.copy(buf, o);
      buf.writeUInt32BE(0x0a000000 + (id >>> 4), o + V2.SRC_ADDR + 12);
      buf.writeUInt16LE(id & 0xffff, o + V2.SRC_PORT);
      buf.writeUInt32LE(1 + (id % 4), o + V2.IF_INDEX);
      buf[o + V2.DIRECTION] = (id >>> 2) & 1;
      buf.writeUInt32LE(64 + (n % 1400), o + V2.BYTES);
      const ns = BigInt(T0 + Math.floor((n / total) * seconds)) * 1_000_000_000n;
      buf.writeBigUInt64LE(ns, o + V2.FIRST_SEEN_NS);
      buf.writeBigUInt64LE(ns + 900_000_000n, o + V2.LAST_SEEN_NS);
    }
    out.push(new RecordBatch(buf, count, NAMES));
  }
  return out;
}

function aggregateAll(input: RecordBatch[]): FlowAggregate {
  const aggregate = new FlowAggregate({ timeline: 'records' });
  for (const batch of input) aggregate.add(batch);
  return aggregate;
}

function bestMs(runs: number, fn: () => void): number {
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    fn();
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

function aggregationLine(name: string, input: RecordBatch[]): FlowAggregate {
  const flows = input.reduce((n, b) => n + b.count, 0);
  let aggregate = aggregateAll(input);
  const ms = bestMs(5, () => {
    aggregate = aggregateAll(input);
  });
  const perSecond = (flows / ms) * 1000;
  console.log(
    `${name.padEnd(52)} ${(perSecond / 1e6).toFixed(2).padStart(6)} M flows/s  ${((ms * 1e6) / flows).toFixed(0).padStart(5)} ns/flow  ` +
      `x${Math.round(perSecond / REQUIRED_FLOWS_PER_S)} vs 100 000 flows/min`,
  );
  return aggregate;
}

function snapshotLine(name: string, aggregate: FlowAggregate, filter: WebFilter): void {
  let bytes = 0;
  const ms = bestMs(5, () => {
    bytes = JSON.stringify(buildSnapshot(aggregate, filter, 50, undefined)).length;
  });
  console.log(
    `${name.padEnd(52)} ${ms.toFixed(1).padStart(6)} ms/push    ${(bytes / 1024).toFixed(0).padStart(5)} KiB     ` +
      `x${Math.round(PUSH_PERIOD_MS / ms)} vs the ${PUSH_PERIOD_MS} ms push period (${aggregate.flows.size} flows in window)`,
  );
}

function filterOf(query: string): WebFilter {
  const filter = parseWebFilter(new URLSearchParams(query));
  if (typeof filter === 'string') throw new Error(filter);
  return filter;
}

console.log(`flowtap web view benchmarks (node ${process.version}, batches of ${BATCH_FLOWS} flows)`);
const full = aggregationLine('aggregate 100 000 distinct flows over 60 s', batches(100_000, 100_000, 60));
aggregationLine('aggregate 1 000 000 records of 1 000 flows over 60 s', batches(1_000_000, 1_000, 60));
aggregationLine('aggregate 1 000 000 distinct flows over 60 s (pruning)', batches(1_000_000, 1_000_000, 60));
snapshotLine('snapshot of 100 000 flows, no filter', full, NO_FILTER);
// The first filtered push formats every address once (cached on the entry); later ones reuse it.
snapshotLine('snapshot of 100 000 flows, filter q=10.0.1', full, filterOf('q=10.0.1'));
snapshotLine('snapshot of 100 000 flows, filter interface+proto', full, filterOf('interface=eth1&proto=tcp'));
