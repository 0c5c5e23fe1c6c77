/**
 * Seeded fuzzing of the capture reader: valid captures of every format and link type flowtap
 * reads, a mutator that damages them the ways real files break (flipped bytes, absurd lengths,
 * cuts, insertions), and one run that feeds a mutant in random chunks and classifies the outcome.
 * Shared by the quick slice in the tests and the long run in bench/pcap-fuzz.bench.ts.
 */

import { LinkType } from '../../../src/capture/packet/link-layers.ts';
import { CaptureDecoder } from '../../../src/capture/pcap/capture-decoder.ts';
import { parseLocalHosts } from '../../../src/capture/pcap/direction.ts';
import { FlowtapError } from '../../../src/errors.ts';
import { seededRandom } from '../../helpers/flows.ts';
import { PACKET_VECTORS } from '../../vectors/packets.ts';
import { classicPcap, PcapngWriter } from './capture-files.ts';

const FRAMES = PACKET_VECTORS.map((v) => Buffer.from(v.frame, 'hex'));

function cookedSll(frame: Buffer, packetType: number): Buffer {
  const header = Buffer.alloc(16);
  header.writeUInt16BE(packetType, 0);
  header.writeUInt16BE(1, 2);
  header.writeUInt16BE(6, 4);
  frame.copy(header, 6, 6, 12);
  frame.copy(header, 14, 12, 14);
  return Buffer.concat([header, frame.subarray(14)]);
}

function cookedSll2(frame: Buffer, packetType: number): Buffer {
  const header = Buffer.alloc(20);
  frame.copy(header, 0, 12, 14);
  header.writeUInt16BE(1, 8);
  header[10] = packetType;
  header[11] = 6;
  frame.copy(header, 12, 6, 12);
  return Buffer.concat([header, frame.subarray(14)]);
}

/** Valid captures covering every format, byte order, link type and block type the reader knows. */
export function fuzzSeeds(): Buffer[] {
  const t = 1_700_000_000;
  const packets = (frames: Buffer[]) =>
    frames.map((frame, i) => ({ frame, seconds: t + i, fraction: i * 7 }));
  const ip = FRAMES.filter((f) => f.length > 14 && (f[12] === 0x08 || f[12] === 0x86));
  const ng = new PcapngWriter()
    .section()
    .iface({ linkType: LinkType.ETHERNET, name: 'eth0', snapBytes: 65535 })
    .iface({ linkType: LinkType.RAW, tsresol: 9, tsoffsetSeconds: 10n })
    .iface({ linkType: LinkType.LINUX_SLL2, tsresol: 0x80 | 20 });
  FRAMES.forEach((f, i) => {
    ng.epb(0, BigInt(t + i) * 1_000_000n, f, { flags: (i % 3) as number });
  });
  ip.slice(0, 6).forEach((f, i) => {
    ng.epb(1, BigInt(i) * 1_000_000_000n, f.subarray(14));
    ng.epb(2, BigInt(t + i) << 20n, cookedSll2(f, i % 5));
  });
  ng.block(4, Buffer.alloc(16)).spb(FRAMES[0]).section(true).iface({ linkType: LinkType.ETHERNET });
  FRAMES.slice(0, 8).forEach((f, i) => {
    ng.epb(0, BigInt(i), f, { wireBytes: f.length + i });
  });
  return [
    classicPcap(packets(FRAMES)),
    classicPcap(packets(FRAMES), { nanos: true, bigEndian: true, snapBytes: 96 }),
    classicPcap(packets(ip.map((f, i) => cookedSll(f, i % 5))), { linkType: LinkType.LINUX_SLL }),
    classicPcap(packets(ip.map((f) => f.subarray(14))), { linkType: LinkType.RAW, bigEndian: true }),
    ng.toBuffer(),
  ];
}

const INTERESTING_U32 = [0, 1, 3, 12, 13, 0x7fffffff, 0xffffffff, 0x40000, 0x40001, 0x1000000, 0x1000004];

/** Returns a damaged copy of one of `seeds`, chosen and damaged by `random`. */
export function mutate(seeds: readonly Buffer[], random: () => number): Buffer {
  let data = Buffer.from(seeds[Math.floor(random() * seeds.length)]);
  const rounds = 1 + Math.floor(random() * 4);
  for (let r = 0; r < rounds && data.length > 0; r++) {
    const at = Math.floor(random() * data.length);
    switch (Math.floor(random() * 6)) {
      case 0:
        data[at] = Math.floor(random() * 256);
        break;
      case 1:
        data[at] ^= 1 << Math.floor(random() * 8);
        break;
      case 2: {
        const aligned = at & ~3;
        if (aligned + 4 <= data.length) {
          const value = INTERESTING_U32[Math.floor(random() * INTERESTING_U32.length)];
          if (random() < 0.5) data.writeUInt32LE(value >>> 0, aligned);
          else data.writeUInt32BE(value >>> 0, aligned);
        }
        break;
      }
      case 3:
        data = data.subarray(0, at);
        break;
      case 4: {
        const insert = Buffer.alloc(1 + Math.floor(random() * 16));
        for (let i = 0; i < insert.length; i++) insert[i] = Math.floor(random() * 256);
        data = Buffer.concat([data.subarray(0, at), insert, data.subarray(at)]);
        break;
      }
      default: {
        const cut = Math.floor(random() * 32);
        data = Buffer.concat([data.subarray(0, at), data.subarray(at + cut)]);
      }
    }
  }
  return data;
}

/** How one input ended: `ok`, or the code of the FlowtapError it raised. */
export type FuzzOutcome = 'ok' | string;

/**
 * Reads `input` in chunks of random sizes with local networks set (so the direction code runs)
 * and returns the outcome. Any exception that is not a FlowtapError, and any packet counted
 * but not handed out or read but neither counted, skipped nor a copy met on another interface (also when the input ends in a
 * FlowtapError), is thrown: those are the defects fuzzing looks for.
 */
export function fuzzOne(input: Buffer, random: () => number): FuzzOutcome {
  const decoder = new CaptureDecoder({
    localHosts: LOCAL_HOSTS,
    initialRows: 16,
  });
  let rows = 0;
  let outcome: FuzzOutcome = 'ok';
  try {
    for (let at = 0; at < input.length; ) {
      const step = 1 + Math.floor(random() * (random() < 0.2 ? 8 : 4096));
      rows += decoder.push(input.subarray(at, at + step))?.count ?? 0;
      at += step;
    }
    decoder.end();
  } catch (err) {
    if (!(err instanceof FlowtapError)) throw err;
    outcome = err.code;
  }
  const s = decoder.stats;
  if (s.counted + s.listRows !== rows || s.counted + s.skippedTotal + s.duplicates !== s.packets) {
    throw new Error(
      `packets lost: ${s.packets} read, ${s.counted} counted (${rows} rows, ${s.listRows} listing interfaces), ${s.skippedTotal} skipped, ${s.duplicates} copies on other interfaces`,
    );
  }
  return outcome;
}

const LOCAL_HOSTS = parseLocalHosts('192.0.2.0/24,2001:db8::/64', '02:00:00:00:00:02');

/** Runs `count` mutants from `seed`; returns how many ended each way. */
export function fuzzRun(count: number, seed: number): Map<FuzzOutcome, number> {
  const random = seededRandom(seed);
  const seeds = fuzzSeeds();
  const outcomes = new Map<FuzzOutcome, number>();
  for (let i = 0; i < count; i++) {
    const outcome = fuzzOne(mutate(seeds, random), random);
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
  }
  return outcomes;
}
