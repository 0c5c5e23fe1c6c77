/**
 * Seeded random v2 rows for the pbflow codec tests: both families, zero fields, 64-bit extremes,
 * missing and non-ASCII interface names.
 */
import { type RecordBatch, RecordBatchBuilder } from '../../../src/codec/record-batch.ts';
import { V2 } from '../../../src/codec/v2-layout.ts';
import { InterfaceRegistry } from '../../../src/model/interfaces.ts';
import { writeIpv4Mapped } from '../../../src/model/ip.ts';
import { seededRandom } from '../../helpers/flows.ts';

/** Interface names of the random rows, by index; index 0 has none. */
export const NAMES = [
  '',
  'eth0',
  'veth-flowtap1',
  'éthernet0',
  '网卡0',
  'wlan😀',
  'x'.repeat(200),
  'lone\ud800surrogate',
];

/** Interface indexes 1..NAMES.length-1 named; 0 and anything else resolve to ''. */
function names(): InterfaceRegistry {
  const registry = new InterfaceRegistry();
  NAMES.forEach((name, i) => {
    if (i > 0) registry.set(i, name);
  });
  return registry;
}

/** A u32 that is zero, all ones, small or anything, so both defaults and extremes are common. */
function u32(random: () => number): number {
  const pick = random();
  if (pick < 0.2) return 0;
  if (pick < 0.3) return 0xffffffff;
  if (pick < 0.6) return Math.floor(random() * 300);
  return Math.floor(random() * 2 ** 32) >>> 0;
}

/** `count` rows of random content in every field the encoder reads. */
export function randomBatch(seed: number, count: number): RecordBatch {
  const random = seededRandom(seed);
  const builder = new RecordBatchBuilder(count, names());
  for (let n = 0; n < count; n++) {
    const o = builder.appendRow();
    const b = builder.bytes;
    const family = random();
    const etype = family < 0.45 ? 0x0800 : family < 0.9 ? 0x86dd : family < 0.95 ? 0 : 0x0806;
    b.writeUInt16LE(etype, o + V2.ETH_PROTOCOL);
    b[o + V2.DIRECTION] = random() < 0.9 ? Math.floor(random() * 2) : Math.floor(random() * 256);
    b[o + V2.TRANSPORT_PROTOCOL] = random() < 0.1 ? 0 : Math.floor(random() * 256);
    for (const mac of [V2.SRC_MAC, V2.DST_MAC]) {
      if (random() < 0.8) for (let k = 0; k < 6; k++) b[o + mac + k] = Math.floor(random() * 256);
    }
    for (const addr of [V2.SRC_ADDR, V2.DST_ADDR]) {
      const shape = random();
      if (etype === 0x0800 || (shape < 0.3 && etype !== 0x86dd)) writeIpv4Mapped(u32(random), b, o + addr);
      else if (shape < 0.9) for (let k = 0; k < 16; k++) b[o + addr + k] = Math.floor(random() * 256);
      // else: all zero (unset address of an ARP or unknown frame)
    }
    b.writeUInt16LE(u32(random) & 0xffff, o + V2.SRC_PORT);
    b.writeUInt16LE(u32(random) & 0xffff, o + V2.DST_PORT);
    b.writeUInt32LE(random() < 0.9 ? Math.floor(random() * NAMES.length) : u32(random), o + V2.IF_INDEX);
    for (const u64 of [V2.BYTES, V2.PACKETS, V2.FIRST_SEEN_NS, V2.LAST_SEEN_NS]) {
      b.writeUInt32LE(u32(random), o + u64);
      b.writeUInt32LE(u32(random), o + u64 + 4);
    }
  }
  return builder.finish();
}
