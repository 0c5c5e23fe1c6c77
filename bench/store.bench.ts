/**
 * Flow store benchmarks: flows/s appended (batches of 10 000, as an agent evicts them; target
 * ≥ 500 k flows/s), bytes on disk per million flows, and the latency of the top-talkers question
 * (median of 5) over 1 M and 10 M stored flows spread over a week of daily partitions (target
 * ≤ 200 ms). Appending is also given per CPU second of the process, which a shared machine
 * disturbs less than wall-clock time. Set STORE_BENCH_FLOWS to change the largest size. Figures on a shared machine are noisy.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RecordBatch, recordBatchOf } from '../src/codec/record-batch.ts';
import { V2, V2_RECORD_BYTES } from '../src/codec/v2-layout.ts';
import type { Flow } from '../src/model/flow.ts';
import { InterfaceRegistry } from '../src/model/interfaces.ts';
import { FlowStore } from '../src/store/flow-store.ts';
import { questionSql } from '../src/store/questions.ts';
import { openStoreReader } from '../src/store/store-reader.ts';
import { makeFlow } from '../test/helpers/flows.ts';

const TARGET_APPEND_FLOWS_PER_S = 500_000;
const TARGET_TOP_TALKERS_MS = 200;
const BATCH_FLOWS = 10_000;
const LARGEST = Number(process.env.STORE_BENCH_FLOWS ?? 10_000_000);
const SIZES = [1_000_000, LARGEST].filter((n, i, all) => n <= LARGEST && all.indexOf(n) === i);
const WEEK_NS = 7n * 86_400_000_000_000n;
const START_NS = 1_700_000_000_000_000_000n;
const QUERY_RUNS = 5;

/** Half IPv4, half IPv6, both directions, two named interfaces. */
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
        srcAddr: ipv6 ? '2001:db8::1' : '10.0.0.1',
        dstAddr: ipv6 ? 'fd00::1' : '192.168.0.1',
        srcPort: 1024 + (i % 60_000),
        dstPort: [443, 80, 53, 22][i % 4],
        proto: i % 4 === 2 ? 17 : 6,
        ifIndex: 2 + (i % 2),
        bytes: 1_500 * ((i % 97) + 1),
        packets: (i % 97) + 1,
        tcpFlags: 0x18,
      }),
    );
  }
  return recordBatchOf(flows, names);
}

/** Gives batch number `k` random sources (65 536 per family, ~116 000 in all) and a time `k/batches` into the week. */
function reshape(batch: RecordBatch, k: number, batches: number): void {
  const b = batch.bytes;
  const endNs = START_NS + (WEEK_NS * BigInt(k)) / BigInt(batches);
  let seed = (k * 2_654_435_761) >>> 0;
  for (let i = 0; i < batch.count; i++) {
    const o = i * V2_RECORD_BYTES;
    seed = (seed * 1_103_515_245 + 12_345) >>> 0;
    b.writeUInt16BE(seed >>> 16, o + V2.SRC_ADDR + 14);
    b.writeBigUInt64LE(endNs - 1_000_000_000n, o + V2.FIRST_SEEN_NS);
    b.writeBigUInt64LE(endNs + BigInt(i), o + V2.LAST_SEEN_NS);
  }
}

function ratio(figure: number, target: number, unit: string): string {
  return `x${(figure / target).toFixed(2)} vs target ${target.toLocaleString('en')} ${unit}`;
}

const dir = mkdtempSync(join(tmpdir(), 'flowtap-store-bench-'));
try {
  const file = join(dir, 'flows.duckdb');
  const batch = benchBatch();
  let stored = 0;
  let appendMs = 0;
  let appendCpuUs = 0;
  for (const size of SIZES) {
    const store = await FlowStore.open(file);
    const batches = LARGEST / BATCH_FLOWS;
    while (stored < size) {
      reshape(batch, stored / BATCH_FLOWS, batches);
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      await store.append(batch);
      const cpu = process.cpuUsage(cpu0);
      appendCpuUs += cpu.user + cpu.system;
      appendMs += performance.now() - t0;
      stored += batch.count;
    }
    await store.close();
    const perS = stored / (appendMs / 1000);
    const perCpuS = stored / (appendCpuUs / 1e6);
    const mb = stored / 1e6;
    console.log(
      `append, ${mb} M flows stored${' '.repeat(16)} ${Math.round(perS).toLocaleString('en').padStart(9)} flows/s  ${ratio(perS, TARGET_APPEND_FLOWS_PER_S, 'flows/s')}`,
    );
    console.log(
      `append per CPU second, ${mb} M flows${' '.repeat(7)} ${Math.round(perCpuS).toLocaleString('en').padStart(9)} flows/s  ${ratio(perCpuS, TARGET_APPEND_FLOWS_PER_S, 'flows/s')}`,
    );
    console.log(
      `store size, ${mb} M flows${' '.repeat(18)} ${(statSync(file).size / mb / 2 ** 20).toFixed(1).padStart(9)} MiB per million flows`,
    );
    const reader = await openStoreReader(file);
    const sql = questionSql('top talkers', { limit: 10, by: 'total', stepMs: 60_000 });
    const times: number[] = [];
    for (let run = 0; run < QUERY_RUNS; run++) {
      const t0 = performance.now();
      await reader.connection.runAndReadAll(sql);
      times.push(performance.now() - t0);
    }
    reader.close();
    const median = times.sort((a, b) => a - b)[Math.floor(QUERY_RUNS / 2)];
    console.log(
      `top talkers, ${mb} M flows${' '.repeat(17)} ${median.toFixed(0).padStart(9)} ms       x${(median / TARGET_TOP_TALKERS_MS).toFixed(2)} of target ${TARGET_TOP_TALKERS_MS} ms (≤ 1 meets it)`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
