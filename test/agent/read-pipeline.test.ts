/** The read's data path (CaptureRead): evicted batches' buffers go back to the accounter once the sinks are done. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CaptureRead, EVICT_PART_FLOWS } from '../../src/agent/commands/read-pipeline.ts';
import { CaptureInputs } from '../../src/capture/pcap/capture-inputs.ts';
import { NO_LOCAL_HOSTS } from '../../src/capture/pcap/direction.ts';
import type { RecordBatch } from '../../src/codec/record-batch.ts';
import { emptySinkStats, type FlowSink } from '../../src/sink/flow-sink.ts';
import { type ClassicPacket, classicPcap } from '../capture/pcap/capture-files.ts';
import { PACKET_VECTORS } from '../vectors/packets.ts';

const T0 = 1_700_000_000;
const WINDOWS = 10;
const FLOWS = 20;

/** Packets of `flows` flows (source ports from 10 000) in each of `windows` 5 s windows. */
function windowPackets(windows: number, flows: number): ClassicPacket[] {
  return Array.from({ length: windows * flows }, (_, i) => {
    const frame = Buffer.from(PACKET_VECTORS[0].frame, 'hex');
    frame.writeUInt16BE(10_000 + (i % flows), 34);
    return { frame, seconds: T0 + 5 * Math.floor(i / flows), fraction: i };
  });
}

/** Reads `packets` from a file with a 5 s active timeout into `sink`. */
async function readInto(
  t: { after(fn: () => void): void },
  packets: ClassicPacket[],
  sink: FlowSink,
  bidirectional = false,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-read-pipeline-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'windows.pcap');
  writeFileSync(file, classicPcap(packets));
  const read = new CaptureRead({
    cacheMaxFlows: 10_000,
    cacheActiveTimeoutMs: 5000,
    localHosts: NO_LOCAL_HOSTS,
    agentIp: new Uint8Array(16),
    bidirectional,
  });
  await read.run(await CaptureInputs.open([file]), [sink]);
}

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
    whenDone: () => Promise.resolve(),
    stop: () => Promise.resolve(),
  };
}

test("a read's evictions reuse the evicted rows' buffers once the sinks are done with them", async (t) => {
  const buffers = new Set<ArrayBufferLike>();
  const flows: number[] = [];
  await readInto(t, windowPackets(WINDOWS, FLOWS), idleSink(buffers, flows));
  assert.deepEqual(flows, Array(WINDOWS).fill(FLOWS));
  assert.ok(buffers.size <= 2, `${buffers.size} buffers for ${WINDOWS} evictions`);
});

test('a window of more flows than a part goes to the sinks in parts, through the same few buffers', async (t) => {
  const perWindow = EVICT_PART_FLOWS * 2 + 5;
  const buffers = new Set<ArrayBufferLike>();
  const flows: number[] = [];
  await readInto(t, windowPackets(3, perWindow), idleSink(buffers, flows));
  assert.deepEqual(flows, Array(3).fill([EVICT_PART_FLOWS, EVICT_PART_FLOWS, 5]).flat());
  assert.ok(buffers.size <= 2, `${buffers.size} buffers for ${flows.length} parts`);
});

test('a bidirectional read takes each window whole: pairing needs both directions in one batch', async (t) => {
  const perWindow = EVICT_PART_FLOWS + 5;
  const buffers = new Set<ArrayBufferLike>();
  const flows: number[] = [];
  await readInto(t, windowPackets(2, perWindow), idleSink(buffers, flows), true);
  assert.deepEqual(flows, [perWindow, perWindow]);
});
