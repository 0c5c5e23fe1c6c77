/**
 * Seeded random v2 rows for the pbflow codec tests: both families, zero fields, 64-bit extremes,
 * missing and non-ASCII interface names.
 */
import { type RecordBatch, RecordBatchBuilder } from '../../../src/codec/record-batch.ts';
import { HealthFlag, V2, V2_DNS_NAME_MAX, V2_MAX_CROSSED } from '../../../src/codec/v2-layout.ts';
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
    writeRandomIdentity(random, b, o);
    writeRandomHealth(random, b, o);
    if (random() < 0.3) writeRandomDns(random, b, o);
  }
  return builder.finish();
}

/** A random 16-byte address: IPv4 mapped, IPv6 or unset. */
function writeRandomAddress(random: () => number, b: Buffer, at: number): void {
  const shape = random();
  if (shape < 0.4) writeIpv4Mapped(u32(random), b, at);
  else if (shape < 0.8) for (let k = 0; k < 16; k++) b[at + k] = Math.floor(random() * 256);
}

/** Random agent IP, VLAN ids, tunnel and interfaces crossed (issue 13's fields), often absent. */
function writeRandomIdentity(random: () => number, b: Buffer, o: number): void {
  writeRandomAddress(random, b, o + V2.AGENT_IP);
  if (random() < 0.3) b.writeUInt16LE(Math.floor(random() * 4096), o + V2.VLAN_OUTER);
  if (random() < 0.15) b.writeUInt16LE(Math.floor(random() * 4096), o + V2.VLAN_INNER);
  if (random() < 0.3) {
    b[o + V2.TUNNEL_TYPE] = 1 + Math.floor(random() * 4);
    b.writeUInt32LE(u32(random), o + V2.TUNNEL_ID);
    writeRandomAddress(random, b, o + V2.TUNNEL_SRC);
    writeRandomAddress(random, b, o + V2.TUNNEL_DST);
  }
  const crossed = Math.floor(random() * (V2_MAX_CROSSED + 1));
  for (let k = 0; k < crossed; k++) {
    b.writeUInt32LE(Math.floor(random() * (NAMES.length + 1)), o + V2.CROSSED_IF_INDEX + 4 * k);
    b[o + V2.CROSSED_DIRECTION + k] = random() < 0.9 ? Math.floor(random() * 2) : Math.floor(random() * 256);
  }
  b[o + V2.CROSSED_COUNT] = crossed;
}

/** A random u64 (lo, hi) at `at`, small or up to all ones. */
function writeRandomU64(random: () => number, b: Buffer, at: number): void {
  b.writeUInt32LE(u32(random), at);
  b.writeUInt32LE(random() < 0.7 ? 0 : u32(random), at + 4);
}

/**
 * Random health sections (issue 14): RTTs and handshake times measured or not, drops and
 * retransmissions counted or not, the latest drop's fields set only with drops (as the kernel and
 * the merge rule leave them).
 */
function writeRandomHealth(random: () => number, b: Buffer, o: number): void {
  if (random() < 0.4) return;
  let flags = 0;
  if (random() < 0.5) {
    for (const at of [V2.RTT_MIN_NS, V2.RTT_MAX_NS, V2.RTT_LAST_NS]) writeRandomU64(random, b, o + at);
    b.writeUInt32LE(random() < 0.1 ? 0 : u32(random), o + V2.RTT_SAMPLES);
    flags |= HealthFlag.RTT;
  }
  if (random() < 0.3) {
    writeRandomU64(random, b, o + V2.HANDSHAKE_RTT_NS);
    flags |= HealthFlag.HANDSHAKE;
  }
  b[o + V2.HEALTH_FLAGS] = flags;
  if (random() < 0.5) {
    writeRandomU64(random, b, o + V2.DROP_BYTES);
    writeRandomU64(random, b, o + V2.DROP_PACKETS);
    if (b.readBigUInt64LE(o + V2.DROP_PACKETS) !== 0n) {
      writeRandomU64(random, b, o + V2.DROP_LATEST_NS);
      b.writeUInt32LE(u32(random), o + V2.DROP_LATEST_CAUSE);
      b.writeUInt16LE(u32(random) & 0xffff, o + V2.DROP_LATEST_FLAGS);
      b[o + V2.DROP_LATEST_STATE] = u32(random) & 0xff;
    }
  }
  if (random() < 0.5) {
    writeRandomU64(random, b, o + V2.RETRANS_BYTES);
    writeRandomU64(random, b, o + V2.RETRANS_PACKETS);
  }
}

/** A random DNS section: any flags, counts, id, latency, errno, and a name of any bytes. */
function writeRandomDns(random: () => number, b: Buffer, o: number): void {
  b[o + V2.DNS_RECORD_FLAGS] = Math.floor(random() * 16);
  for (const count of [V2.DNS_QUERIES, V2.DNS_ANSWERS, V2.DNS_UNANSWERED, V2.DNS_MALFORMED]) {
    if (random() < 0.5) b.writeUInt32LE(u32(random), o + count);
  }
  b.writeUInt16LE(u32(random) & 0xffff, o + V2.DNS_ID);
  b.writeUInt16LE(u32(random) & 0xffff, o + V2.DNS_FLAGS);
  b.writeUInt32LE(u32(random), o + V2.DNS_LATENCY_NS);
  b.writeUInt32LE(random() < 0.8 ? 0 : u32(random), o + V2.DNS_LATENCY_NS + 4);
  b.writeUInt32LE(u32(random), o + V2.DNS_LATEST_NS);
  b[o + V2.DNS_ERRNO] = random() < 0.7 ? 0 : Math.floor(random() * 256);
  const length = Math.floor(random() * (V2_DNS_NAME_MAX + 1));
  b[o + V2.DNS_NAME_LEN] = length;
  for (let k = 0; k < length; k++)
    b[o + V2.DNS_NAME + k] = random() < 0.9 ? 0x61 + Math.floor(random() * 26) : Math.floor(random() * 256);
}
