/**
 * DNS tracking's cost in `flowtap read` (in process: decoder, tracker, accounter, join; flows go
 * to a sink that counts them), on generated classic pcaps of 1 M packets:
 * - no DNS: UDP and TCP packets of 20 000 flows on ports other than 53; tracking on is held to
 *   tracking off (target: within noise, ratio ≈ 1);
 * - DNS flood: 500 000 queries from 1 000 client ports with random ids, each answered 1 ms later
 *   (1 M packets), with tracking on against the same capture read with tracking off.
 * Best of 3 runs each; the machine is shared, so compare the ratios of one run.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CaptureRead } from '../src/agent/commands/read-pipeline.ts';
import { CaptureInputs } from '../src/capture/pcap/capture-inputs.ts';
import { NO_LOCAL_HOSTS } from '../src/capture/pcap/direction.ts';
import type { RecordBatch } from '../src/codec/record-batch.ts';
import { emptySinkStats, type FlowSink } from '../src/sink/flow-sink.ts';
import { type ClassicPacket, classicPcap } from '../test/capture/pcap/capture-files.ts';
import { dnsFrame } from '../test/vectors/dns.ts';

const PACKETS = 1_000_000;
const RUNS = 3;
const START_SECONDS = 1_700_000_000;
const QUERY = '12340100000100000000000003777777076578616d706c6503636f6d0000010001';
const RESPONSE =
  '12348180000100010000000003777777076578616d706c6503636f6d0000010001c00c000100010000012c0004c000020a';

/** A sink that counts flows and keeps nothing. */
class CountingSink implements FlowSink {
  readonly name = 'count';
  readonly stats = emptySinkStats();
  flows = 0;
  export(batch: RecordBatch): boolean {
    this.flows += batch.count;
    return true;
  }
  async whenDone(): Promise<void> {}
  async stop(): Promise<void> {}
}

function at(us: number): Pick<ClassicPacket, 'seconds' | 'fraction'> {
  return { seconds: START_SECONDS + Math.floor(us / 1e6), fraction: us % 1e6 };
}

/** 1 M UDP/TCP packets of 20 000 flows, none on a DNS port. */
function plainCapture(): Buffer {
  const packets: ClassicPacket[] = [];
  const udp = dnsFrame({ from: 'client', transport: 'udp', payload: QUERY });
  const tcp = dnsFrame({ from: 'client', transport: 'tcp', payload: `0021${QUERY}` });
  for (let i = 0; i < PACKETS; i++) {
    const frame = Buffer.from(i % 2 === 0 ? udp : tcp);
    frame.writeUInt16BE(10_000 + (i % 20_000), 34); // source port
    frame.writeUInt16BE(8080, 36); // not DNS
    packets.push({ frame, ...at(i * 10) });
  }
  return classicPcap(packets);
}

/** 500 000 queries with random ids from 1 000 ports, each answered 1 ms later. */
function floodCapture(): Buffer {
  const packets: ClassicPacket[] = [];
  let seed = 1;
  for (let i = 0; i < PACKETS / 2; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    const id = seed >>> 16;
    const port = 20_000 + (i % 1_000);
    const query = dnsFrame({ from: 'client', transport: 'udp', payload: QUERY });
    query.writeUInt16BE(port, 34);
    query.writeUInt16BE(id, 42);
    const response = dnsFrame({ from: 'server', transport: 'udp', payload: RESPONSE });
    response.writeUInt16BE(port, 36);
    response.writeUInt16BE(id, 42);
    packets.push({ frame: query, ...at(i * 20) }, { frame: response, ...at(i * 20 + 1000) });
  }
  // Responses 1 ms later than their queries interleave with later queries: in time order.
  packets.sort((a, b) => a.seconds - b.seconds || a.fraction - b.fraction);
  return classicPcap(packets);
}

/** Best packets/s of reading `file` with DNS tracking on port 53 (`dns`) or off. */
async function packetsPerSecond(file: string, dns: boolean): Promise<number> {
  let best = 0;
  for (let run = 0; run < RUNS; run++) {
    const read = new CaptureRead({
      cacheMaxFlows: 1 << 17,
      cacheActiveTimeoutMs: 5_000,
      localHosts: NO_LOCAL_HOSTS,
      agentIp: new Uint8Array(16),
      bidirectional: false,
      dnsPorts: dns ? [53] : undefined,
    });
    const started = performance.now();
    await read.run(await CaptureInputs.open([file]), [new CountingSink()]);
    const seconds = (performance.now() - started) / 1000;
    best = Math.max(best, read.decoder.stats.packets / seconds);
  }
  return best;
}

const dir = mkdtempSync(join(tmpdir(), 'flowtap-dns-bench-'));
try {
  for (const [name, make] of [
    ['no DNS', plainCapture],
    ['DNS flood', floodCapture],
  ] as const) {
    const file = join(dir, `${name.replace(' ', '-')}.pcap`);
    writeFileSync(file, make());
    const off = await packetsPerSecond(file, false);
    const on = await packetsPerSecond(file, true);
    console.log(
      `read, ${name}, 1 M packets: DNS tracking off ${Math.round(off)} packets/s, on ${Math.round(on)} packets/s ` +
        `(ratio ${(on / off).toFixed(2)} to off)`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
