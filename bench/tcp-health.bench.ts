/**
 * What the TCP analysis of `flowtap read` (src/capture/pcap/tcp-health.ts: handshake RTT and
 * retransmissions) costs per packet: the read's data path (file → CaptureDecoder → Accounter →
 * evicted rows, the sink only counting) over one generated TCP capture, with the analysis off
 * (the baseline) and on, runs interleaved, best of 5. Each run is a child `node` running the built
 * modules (dist/, `npm run build` first) without tsx, whose module loader slows every access to
 * an imported binding and would misstate hot paths. The capture: 1 M packets,
 * tcpdump's 96-byte snap length, 10 000 connections open at once in a skewed mix, each a
 * handshake then data segments answered by ACKs, one segment in 100 sent again later (so the
 * retransmission path is taken), one segment in 10 of payload. Also prints the UDP-only case,
 * which the analysis passes over. Both cores are shared: compare the ratios of one run.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const PACKETS = 1_000_000;
const CONNECTIONS = 10_000;
const SNAP_BYTES = 96;
const PACKET_SPACING_US = 10;
const START_SECONDS = 1_700_000_000;
const RUNS = 5;
const HEADER_BYTES = 14 + 20 + 20;
const SYN = 0x02;
const ACK = 0x10;
const PSH = 0x08;

/** Frame headers of one direction of connection `c` (Ethernet, IPv4, TCP or UDP). */
function headers(c: number, fromClient: boolean, udp: boolean): Buffer {
  const frame = Buffer.alloc(HEADER_BYTES);
  frame.set([0x02, 0, 0, 0, 0, fromClient ? 2 : 1, 0x02, 0, 0, 0, 0, fromClient ? 1 : 2], 0);
  frame.writeUInt16BE(0x0800, 12);
  frame[14] = 0x45;
  frame[22] = 64;
  frame[23] = udp ? 17 : 6;
  const client = [10, 1, c >>> 8, c & 0xff];
  const server = [10, 2, 0, 1];
  frame.set(fromClient ? client : server, 26);
  frame.set(fromClient ? server : client, 30);
  const clientPort = 20_000 + (c % 40_000);
  frame.writeUInt16BE(fromClient ? clientPort : 443, 34);
  frame.writeUInt16BE(fromClient ? 443 : clientPort, 36);
  frame[46] = 5 << 4;
  frame.writeUInt16BE(502, 48);
  return frame;
}

/** Writes the capture (TCP conversations, or the same packets as UDP); returns its path. */
function generate(path: string, udp: boolean): string {
  const fd = openSync(path, 'w');
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(SNAP_BYTES, 16);
  header.writeUInt32LE(1, 20);
  writeSync(fd, header);
  const frames = Array.from({ length: CONNECTIONS }, (_, c) => [
    headers(c, true, udp),
    headers(c, false, udp),
  ]);
  const step = new Int32Array(CONNECTIONS);
  const seq = new Int32Array(CONNECTIONS * 2);
  const chunk = Buffer.alloc(4 << 20);
  let at = 0;
  let random = 12345;
  for (let i = 0; i < PACKETS; i++) {
    random = (Math.imul(random, 1103515245) + 12345) >>> 0;
    const c = Math.floor(((random >>> 8) / 16_777_216) ** 2 * CONNECTIONS);
    const n = step[c]++;
    // Handshake, then the client sends data and the server acknowledges it, in turn.
    const fromClient = n === 0 || n === 2 || (n > 2 && n % 2 === 1);
    const side = c * 2 + (fromClient ? 0 : 1);
    const flags = n === 0 ? SYN : n === 1 ? SYN | ACK : fromClient && n > 2 ? ACK | PSH : ACK;
    let payload = fromClient && n > 2 ? 1448 : 0;
    if (n > 2 && (random & 0x3ff) < 100) payload = 0;
    let segmentSeq = seq[side];
    // One segment in 100 of data repeats the one before it (a retransmission).
    const again = payload > 0 && n > 5 && random % 100 === 0;
    if (again) segmentSeq = (seq[side] - payload) | 0;
    else seq[side] = (seq[side] + payload + (flags & SYN ? 1 : 0)) | 0;
    const wire = HEADER_BYTES + payload;
    const captured = Math.min(wire, SNAP_BYTES);
    if (at + 16 + captured > chunk.length) {
      writeSync(fd, chunk, 0, at);
      at = 0;
    }
    const us = i * PACKET_SPACING_US;
    chunk.writeUInt32LE(START_SECONDS + Math.floor(us / 1e6), at);
    chunk.writeUInt32LE(us % 1e6, at + 4);
    chunk.writeUInt32LE(captured, at + 8);
    chunk.writeUInt32LE(wire, at + 12);
    const f = at + 16;
    frames[c][fromClient ? 0 : 1].copy(chunk, f, 0, HEADER_BYTES);
    chunk.fill(0x5a, f + HEADER_BYTES, f + captured);
    chunk.writeUInt16BE(wire - 14, f + 16);
    if (udp) {
      chunk.writeUInt16BE(wire - 34, f + 38);
    } else {
      chunk.writeInt32BE(segmentSeq, f + 38);
      chunk.writeInt32BE(seq[side ^ 1], f + 42);
      chunk[f + 47] = flags;
    }
    at += 16 + captured;
  }
  writeSync(fd, chunk, 0, at);
  closeSync(fd);
  return path;
}

const DIST = new URL('../dist/src/', import.meta.url).href;

/**
 * One read of `path` through the read's data path, in a child process on the built modules: it
 * prints the seconds, after checking every packet was counted (and, with the analysis on, that
 * it found the retransmissions the capture holds).
 */
const READ_ONCE = `
const [path, health, expectRetrans] = process.argv.slice(1);
const { CaptureRead } = await import('${DIST}agent/commands/read-pipeline.js');
const { CaptureInputs } = await import('${DIST}capture/pcap/capture-inputs.js');
const { NO_LOCAL_HOSTS } = await import('${DIST}capture/pcap/direction.js');
const { emptySinkStats } = await import('${DIST}sink/flow-sink.js');
const on = health === 'on';
const read = new CaptureRead({
  cacheMaxFlows: 131072, cacheActiveTimeoutMs: 5000, localHosts: NO_LOCAL_HOSTS,
  agentIp: new Uint8Array(16), bidirectional: false, tcpHealth: { rtt: on, retransmissions: on },
});
const sink = { name: 'count', stats: emptySinkStats(), export: () => true, whenDone: async () => {}, stop: async () => {} };
const started = process.hrtime.bigint();
await read.run(await CaptureInputs.open([path]), [sink]);
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
const stats = read.decoder.stats;
if (stats.counted !== ${PACKETS}) throw new Error('counted ' + stats.counted);
if (on && expectRetrans === 'yes' && stats.tcpHealth.retransmittedSegments === 0) throw new Error('no retransmission found');
console.log(seconds);
`;

function readSeconds(path: string, health: boolean, expectRetrans: boolean): number {
  const out = execFileSync(
    process.execPath,
    ['--input-type=module', '-e', READ_ONCE, path, health ? 'on' : 'off', expectRetrans ? 'yes' : 'no'],
    { encoding: 'utf8' },
  );
  return Number(out.trim());
}

const dir = mkdtempSync(join(tmpdir(), 'flowtap-tcp-health-bench-'));
try {
  for (const kind of ['tcp', 'udp'] as const) {
    const path = generate(join(dir, `${kind}.pcap`), kind === 'udp');
    const best = { off: Number.POSITIVE_INFINITY, on: Number.POSITIVE_INFINITY };
    for (let run = 0; run < RUNS; run++) {
      best.off = Math.min(best.off, readSeconds(path, false, kind === 'tcp'));
      best.on = Math.min(best.on, readSeconds(path, true, kind === 'tcp'));
    }
    const ns = (seconds: number) => (seconds * 1e9) / PACKETS;
    console.log(`${kind}: read, TCP health off (baseline): ${ns(best.off).toFixed(0)} ns/packet`);
    console.log(
      `${kind}: read, TCP health on: ${ns(best.on).toFixed(0)} ns/packet, ` +
        `${(best.on / best.off).toFixed(2)}x baseline (+${(ns(best.on) - ns(best.off)).toFixed(0)} ns/packet)`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
