/**
 * Captures of mixed traffic for the tcpdump cross-check: seeded pseudo-random IPv4/IPv6 frames of
 * TCP, UDP, SCTP, ICMP, ICMPv6, GRE and ESP (with IPv4 fragments and non-IP frames), drawn from
 * small pools of addresses and ports so filters match some and not others. Frames carry no IPv6
 * extension headers, no ARP and, in the untagged capture, no VLAN tags: where tcpdump and flowtap
 * differ by design (docs/flow-key.md, "Filters") the capture holds nothing to differ on.
 */
import { parseIp } from '../../src/model/ip.ts';
import { classicPcap } from '../capture/pcap/capture-files.ts';
import { seededRandom } from '../helpers/flows.ts';

const V4_HOSTS = [
  '10.0.0.1',
  '10.0.0.2',
  '10.1.2.3',
  '192.168.1.10',
  '192.168.1.20',
  '172.16.5.4',
  '8.8.8.8',
];
const V6_HOSTS = ['2001:db8::1', '2001:db8::2', '2001:db8:1::5', 'fe80::1', 'fd00::10'];
const PORTS = [22, 53, 80, 123, 443, 1024, 5201, 8080, 33000, 65535];

const MAC_A = Buffer.from('020000000001', 'hex');
const MAC_B = Buffer.from('020000000002', 'hex');

/** An Ethernet frame (02:..:01 → 02:..:02) of `type` around `payload`, 802.1Q tagged when `vlanId` is given. */
export function ethernet(type: number, payload: Buffer, vlanId?: number): Buffer {
  const head = Buffer.alloc(14);
  MAC_B.copy(head, 0);
  MAC_A.copy(head, 6);
  if (vlanId === undefined) {
    head.writeUInt16BE(type, 12);
    return Buffer.concat([head, payload]);
  }
  head.writeUInt16BE(0x8100, 12);
  const tag = Buffer.alloc(4);
  tag.writeUInt16BE(vlanId, 0);
  tag.writeUInt16BE(type, 2);
  return Buffer.concat([head, tag, payload]);
}

/** An IPv4 packet (checksum zero) of `proto` around `payload`. */
export function ipv4(
  src: string,
  dst: string,
  proto: number,
  payload: Buffer,
  fragment = { offset: 0, more: false },
): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + payload.length, 2);
  h.writeUInt16BE(0x1234, 4);
  h.writeUInt16BE((fragment.more ? 0x2000 : 0) | fragment.offset, 6);
  h[8] = 64;
  h[9] = proto;
  Buffer.from((parseIp(src) as Uint8Array).subarray(12)).copy(h, 12);
  Buffer.from((parseIp(dst) as Uint8Array).subarray(12)).copy(h, 16);
  return Buffer.concat([h, payload]);
}

function ipv6(src: string, dst: string, next: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(40);
  h[0] = 0x60;
  h.writeUInt16BE(payload.length, 4);
  h[6] = next;
  h[7] = 64;
  Buffer.from(parseIp(src) as Uint8Array).copy(h, 8);
  Buffer.from(parseIp(dst) as Uint8Array).copy(h, 24);
  return Buffer.concat([h, payload]);
}

/** A transport header of `bytes` starting with the two ports. */
export function ports(sport: number, dport: number, bytes: number): Buffer {
  const b = Buffer.alloc(bytes);
  b.writeUInt16BE(sport, 0);
  b.writeUInt16BE(dport, 2);
  return b;
}

/** One generated frame and what it is, for failure messages. */
export interface MixedFrame {
  frame: Buffer;
  label: string;
}

/** `count` frames of mixed traffic, the same for the same seed; tagged with a VLAN id when `vlanIds` is given. */
export function mixedFrames(
  count: number,
  seed: number,
  vlanIds: readonly (number | undefined)[] = [undefined],
): MixedFrame[] {
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const port = () => (random() < 0.8 ? pick(PORTS) : 1 + Math.floor(random() * 65535));
  const frames: MixedFrame[] = [];
  for (let i = 0; i < count; i++) {
    const vlan = pick(vlanIds);
    const v6 = random() < 0.4;
    const src = pick(v6 ? V6_HOSTS : V4_HOSTS);
    const dst = pick(v6 ? V6_HOSTS : V4_HOSTS);
    const kind = pick(['tcp', 'tcp', 'udp', 'udp', 'sctp', 'icmp', 'other', 'fragment', 'non-ip'] as const);
    let proto: number;
    let l4: Buffer;
    const sport = port();
    const dport = port();
    switch (kind) {
      case 'tcp':
        proto = 6;
        l4 = ports(sport, dport, 20);
        l4[12] = 0x50;
        l4[13] = pick([0x02, 0x12, 0x10, 0x18, 0x11, 0x04]);
        break;
      case 'udp':
      case 'fragment':
        proto = 17;
        l4 = ports(sport, dport, 8 + Math.floor(random() * 32));
        break;
      case 'sctp':
        proto = 132;
        l4 = ports(sport, dport, 12);
        break;
      case 'icmp':
        proto = v6 ? 58 : 1;
        l4 = Buffer.alloc(8);
        l4[0] = v6 ? pick([128, 129, 135]) : pick([0, 8, 3, 11]);
        l4[1] = l4[0] === 3 ? pick([0, 1, 3]) : 0;
        break;
      default:
        proto = v6 ? 50 : 47;
        l4 = Buffer.alloc(8);
    }
    let frame: Buffer;
    let label: string;
    if (kind === 'non-ip') {
      frame = ethernet(0x88cc, Buffer.alloc(32, 1), vlan);
      label = 'lldp';
    } else if (kind === 'fragment' && !v6) {
      const later = random() < 0.5;
      frame = ethernet(0x0800, ipv4(src, dst, proto, l4, { offset: later ? 185 : 0, more: !later }), vlan);
      label = `ipv4 ${later ? 'later' : 'first'} fragment ${src}:${sport} > ${dst}:${dport}`;
    } else {
      const ip = v6 ? ipv6(src, dst, proto, l4) : ipv4(src, dst, proto, l4);
      frame = ethernet(v6 ? 0x86dd : 0x0800, ip, vlan);
      label = `${v6 ? 'ipv6' : 'ipv4'} proto ${proto} ${src}:${sport} > ${dst}:${dport}`;
    }
    frames.push({ frame, label: vlan === undefined ? label : `vlan ${vlan} ${label}` });
  }
  return frames;
}

/** The frames as a classic pcap file (Ethernet, microseconds). */
export function mixedCapture(frames: readonly MixedFrame[]): Buffer {
  return classicPcap(frames.map((f, i) => ({ frame: f.frame, seconds: 1_700_000_000 + i, fraction: 0 })));
}
