/** The read's data path (CaptureRead): evicted batches' buffers go back to the accounter once the sinks are done. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CaptureRead } from '../../src/agent/commands/read-pipeline.ts';
import { CaptureInputs } from '../../src/capture/pcap/capture-inputs.ts';
import { NO_LOCAL_HOSTS } from '../../src/capture/pcap/direction.ts';
import type { RecordBatch } from '../../src/codec/record-batch.ts';
import { emptySinkStats, type FlowSink } from '../../src/sink/flow-sink.ts';
import { type ClassicPacket, classicPcap } from '../capture/pcap/capture-files.ts';
import { PACKET_VECTORS } from '../vectors/packets.ts';

const T0 = 1_700_000_000;
const WINDOWS = 10;
const FLOWS = 20;

/** Packets of 20 flows in each of ten 5 s windows. */
const packets: ClassicPacket[] = Array.from({ length: WINDOWS * FLOWS }, (_, i) => {
  const frame = Buffer.from(PACKET_VECTORS[0].frame, 'hex');
  frame.writeUInt16BE(10_000 + (i % FLOWS), 34);
  return { frame, seconds: T0 + 5 * Math.floor(i / FLOWS), fraction: i };
});

/** A sink that is done with each batch at once and keeps only what it was given: buffers and counts. */
function idleSink(buffers: Set<ArrayBufferLike>, flows: number[]): FlowSink {
  return {
    name: 'test',
    stats: emptySinkStats(),
    export(batch: RecordBatch): boolean {
      buffers.add(batch.bytes.buffer);
      flows.push(batch.count);
      return true;
    },
    whenIdle: () => Promise.resolve(),
    stop: () => Promise.resolve(),
  };
}

test("a read's evictions reuse the evicted rows' buffers once the sinks are done with them", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-read-pipeline-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'windows.pcap');
  writeFileSync(file, classicPcap(packets));
  const read = new CaptureRead({
    cacheMaxFlows: 1000,
    cacheActiveTimeoutMs: 5000,
    localHosts: NO_LOCAL_HOSTS,
    agentIp: new Uint8Array(16),
    bidirectional: false,
  });
  const buffers = new Set<ArrayBufferLike>();
  const flows: number[] = [];
  await read.run(await CaptureInputs.open([file]), [idleSink(buffers, flows)]);
  assert.deepEqual(flows, Array(WINDOWS).fill(FLOWS));
  assert.ok(buffers.size <= 2, `${buffers.size} buffers for ${WINDOWS} evictions`);
});
