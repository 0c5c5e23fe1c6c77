import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LinkType } from '../../../src/capture/packet/link-layers.ts';
import { CaptureDecoder } from '../../../src/capture/pcap/capture-decoder.ts';
import { parseLocalHosts } from '../../../src/capture/pcap/direction.ts';
import { SkipReason } from '../../../src/capture/pcap/packet-sink.ts';
import { TickResolution, writeUnixNs } from '../../../src/capture/pcap/unix-time.ts';
import type { EventBatch } from '../../../src/codec/event-batch.ts';
import { CaptureFormatError, ConfigError } from '../../../src/errors.ts';
import type { Flow } from '../../../src/model/flow.ts';
import { formatIp } from '../../../src/model/ip.ts';
import { formatMac } from '../../../src/model/mac.ts';
import { PACKET_VECTORS } from '../../vectors/packets.ts';
import { classicPcap, PcapngWriter } from './capture-files.ts';

function vectorFrame(name: string): Buffer {
  const vector = PACKET_VECTORS.find((v) => v.name === name);
  assert.ok(vector, name);
  return Buffer.from(vector.frame, 'hex');
}

const TCP4 = vectorFrame('ipv4 tcp syn with dscp EF');
const UDP6 = vectorFrame('ipv6 udp');
const ICMP4 = vectorFrame('ipv4 icmp echo request');
const TRUNCATED_TCP = vectorFrame('truncated tcp header');
const T0 = 1_700_000_000;

/** Decodes `capture` pushed in chunks of `chunkBytes` (whole by default); flows and decoder. */
function decode(
  capture: Buffer,
  options: { chunkBytes?: number; localNets?: string; localMacs?: string } = {},
): { flows: Flow[]; decoder: CaptureDecoder } {
  const decoder = new CaptureDecoder({ localHosts: parseLocalHosts(options.localNets, options.localMacs) });
  const batches: EventBatch[] = [];
  const step = options.chunkBytes ?? capture.length;
  for (let at = 0; at < capture.length; at += step) {
    const batch = decoder.push(capture.subarray(at, at + step));
    if (batch) batches.push(batch);
  }
  decoder.end();
  return { flows: batches.flatMap((b) => [...b.flows()]), decoder };
}

function decodeError(capture: Buffer): CaptureFormatError {
  try {
    decode(capture);
  } catch (err) {
    assert.ok(err instanceof CaptureFormatError, String(err));
    return err;
  }
  assert.fail('expected a CaptureFormatError');
}

function cooked(sll2: boolean, packetType: number, arphrd: number, frame: Buffer): Buffer {
  const ip = frame.subarray(14);
  const etype = frame.readUInt16BE(12);
  const header = Buffer.alloc(sll2 ? 20 : 16);
  if (sll2) {
    header.writeUInt16BE(etype, 0);
    header.writeUInt32BE(7, 4);
    header.writeUInt16BE(arphrd, 8);
    header[10] = packetType;
    header[11] = 6;
    frame.copy(header, 12, 6, 12);
  } else {
    header.writeUInt16BE(packetType, 0);
    header.writeUInt16BE(arphrd, 2);
    header.writeUInt16BE(6, 4);
    frame.copy(header, 6, 6, 12);
    header.writeUInt16BE(etype, 14);
  }
  return Buffer.concat([header, ip]);
}

describe('classic pcap', () => {
  for (const [label, nanos, bigEndian] of [
    ['microsecond little-endian', false, false],
    ['microsecond big-endian', false, true],
    ['nanosecond little-endian', true, false],
    ['nanosecond big-endian', true, true],
  ] as const) {
    test(`a ${label} file gives one row per packet with its key, length and time`, () => {
      const fraction = nanos ? 123_456_789 : 123_456;
      const capture = classicPcap(
        [
          { frame: TCP4, seconds: T0, fraction },
          { frame: UDP6, seconds: T0 + 1, fraction: 0 },
        ],
        { nanos, bigEndian },
      );
      const { flows, decoder } = decode(capture);
      assert.equal(flows.length, 2);
      assert.equal(formatIp(flows[0].srcAddr, 0, flows[0].etype), '192.0.2.1');
      assert.equal(flows[0].dstPort, 80);
      assert.equal(flows[0].bytes, TCP4.length);
      assert.equal(flows[0].packets, 1);
      const ns = BigInt(T0) * 1_000_000_000n + BigInt(nanos ? fraction : fraction * 1000);
      assert.equal(flows[0].timeFlowStartNs, ns);
      assert.equal(flows[0].timeFlowEndNs, ns);
      assert.equal(flows[1].etype, 0x86dd);
      assert.equal(flows[0].interface, 'pcap0');
      assert.equal(decoder.stats.format, 'pcap');
      assert.equal(decoder.stats.counted, 2);
    });
  }

  test('the original length is counted, not the captured length', () => {
    const capture = classicPcap([{ frame: TCP4, seconds: T0, fraction: 0, wireBytes: 1514 }]);
    assert.equal(decode(capture).flows[0].bytes, 1514);
  });

  test('a file fed one byte at a time gives the same rows as fed whole', () => {
    const capture = classicPcap(
      PACKET_VECTORS.map((v, i) => ({ frame: Buffer.from(v.frame, 'hex'), seconds: T0 + i, fraction: i })),
    );
    const whole = decode(capture);
    const bytewise = decode(capture, { chunkBytes: 1 });
    assert.deepEqual(bytewise.flows, whole.flows);
    assert.deepEqual([...bytewise.decoder.stats.skipped], [...whole.decoder.stats.skipped]);
  });

  test('raw IP link types count the IP packet under the Ethernet type of its version', () => {
    for (const linkType of [LinkType.RAW, LinkType.IPV4, LinkType.IPV6]) {
      const frame = linkType === LinkType.IPV6 ? UDP6 : TCP4;
      const capture = classicPcap([{ frame: frame.subarray(14), seconds: T0, fraction: 0 }], { linkType });
      const [flow] = decode(capture).flows;
      assert.equal(flow.etype, frame.readUInt16BE(12), `link type ${linkType}`);
      assert.equal(flow.bytes, frame.length - 14, `link type ${linkType}`);
      assert.equal(formatMac(flow.srcMac), '00:00:00:00:00:00');
    }
  });
});

describe('Linux cooked captures', () => {
  for (const sll2 of [false, true]) {
    const name = sll2 ? 'SLL2' : 'SLL';
    test(`${name} counts the bytes an Ethernet device counts and takes direction from the packet type`, () => {
      const linkType = sll2 ? LinkType.LINUX_SLL2 : LinkType.LINUX_SLL;
      const outgoing = cooked(sll2, 4, 1, TCP4);
      const incoming = cooked(sll2, 0, 1, UDP6);
      const tunnel = cooked(sll2, 0, 65534, ICMP4);
      const capture = classicPcap(
        [outgoing, incoming, tunnel].map((frame) => ({ frame, seconds: T0, fraction: 0 })),
        { linkType },
      );
      const { flows } = decode(capture);
      assert.deepEqual(
        flows.map((f) => [f.etype, f.direction, f.bytes, formatMac(f.srcMac), formatMac(f.dstMac)]),
        [
          [0x0800, 1, TCP4.length, '02:00:00:00:00:01', '00:00:00:00:00:00'],
          [0x86dd, 0, UDP6.length, '02:00:00:00:00:01', '00:00:00:00:00:00'],
          [0x0800, 0, ICMP4.length - 14, '02:00:00:00:00:01', '00:00:00:00:00:00'],
        ],
      );
      assert.equal(flows[0].dstPort, 80);
      assert.equal(flows[2].icmpType, 8);
    });
  }
});

describe('pcapng', () => {
  test('interfaces keep their own link type, name, resolution and offset', () => {
    const capture = new PcapngWriter()
      .section()
      .iface({ linkType: LinkType.ETHERNET, name: 'eth0' })
      .iface({ linkType: LinkType.RAW, tsresol: 9, tsoffsetSeconds: 100n })
      .iface({ linkType: LinkType.ETHERNET, name: 'bin', tsresol: 0x80 | 20 })
      .epb(0, BigInt(T0) * 1_000_000n + 5n, TCP4)
      .epb(1, 123_456_789n, UDP6.subarray(14))
      .epb(2, (BigInt(T0) << 20n) + (1n << 19n), ICMP4)
      .toBuffer();
    const { flows } = decode(capture);
    assert.deepEqual(
      flows.map((f) => [f.ifIndex, f.interface, f.etype, f.timeFlowStartNs]),
      [
        [0, 'eth0', 0x0800, BigInt(T0) * 1_000_000_000n + 5000n],
        [1, 'if1', 0x86dd, 100_123_456_789n],
        [2, 'bin', 0x0800, BigInt(T0) * 1_000_000_000n + 500_000_000n],
      ],
    );
  });

  test('sections in different byte orders are read in turn and number interfaces across the file', () => {
    const capture = Buffer.concat([
      new PcapngWriter().section(false).iface({ linkType: 1, name: 'a' }).epb(0, 1n, TCP4).toBuffer(),
      new PcapngWriter().section(true).iface({ linkType: 1, name: 'b' }).epb(0, 2n, UDP6).toBuffer(),
    ]);
    const { flows, decoder } = decode(capture, { chunkBytes: 7 });
    assert.deepEqual(
      flows.map((f) => [f.ifIndex, f.interface, f.timeFlowStartNs]),
      [
        [0, 'a', 1000n],
        [1, 'b', 2000n],
      ],
    );
    assert.equal(decoder.stats.format, 'pcapng');
  });

  test('unknown blocks are passed over and counted, and a simple packet takes the time before it', () => {
    const capture = new PcapngWriter()
      .section()
      .iface({ linkType: 1 })
      .block(0x0bad, Buffer.from('not a packet'))
      .epb(0, 7n, TCP4)
      .block(5, Buffer.alloc(24))
      .spb(UDP6)
      .toBuffer();
    const { flows, decoder } = decode(capture);
    assert.deepEqual(
      flows.map((f) => [f.etype, f.timeFlowStartNs, f.bytes]),
      [
        [0x0800, 7000n, TCP4.length],
        [0x86dd, 7000n, UDP6.length],
      ],
    );
    assert.equal(decoder.stats.otherBlocks, 2);
  });

  test('epb_flags give the direction when no local network is set, and a local network overrides them', () => {
    const capture = new PcapngWriter()
      .section()
      .iface({ linkType: 1 })
      .epb(0, 1n, TCP4, { flags: 2 })
      .epb(0, 2n, UDP6, { flags: 1 })
      .epb(0, 3n, ICMP4)
      .toBuffer();
    assert.deepEqual(
      decode(capture).flows.map((f) => f.direction),
      [1, 0, 0],
    );
    assert.deepEqual(
      decode(capture, { localNets: '198.51.100.0/24,2001:db8::1' }).flows.map((f) => f.direction),
      [0, 1, 0],
    );
    assert.deepEqual(
      decode(capture, { localMacs: '02:00:00:00:00:01' }).flows.map((f) => f.direction),
      [1, 1, 1],
    );
  });
});

describe('bad input', () => {
  test('a wrong magic number is a CaptureFormatError at offset 0', () => {
    const err = decodeError(Buffer.from('GIF89a, not a capture at all'));
    assert.equal(err.offset, 0);
    assert.match(err.message, /neither pcap nor pcapng/);
  });

  test('an empty input is a CaptureFormatError', () => {
    assert.match(decodeError(Buffer.alloc(0)).message, /^damaged capture at byte offset 0: the input is empty/);
  });

  test('a block length that is not a multiple of 4 is a CaptureFormatError at its offset', () => {
    const capture = new PcapngWriter().section().iface({ linkType: 1 }).epb(0, 1n, TCP4).toBuffer();
    const epbAt = 28 + 20;
    capture.writeUInt32LE(capture.readUInt32LE(epbAt + 4) + 1, epbAt + 4);
    const err = decodeError(capture);
    assert.equal(err.offset, epbAt + 4);
    assert.match(err.message, /multiple of 4/);
  });

  test('a trailing block length that differs from the leading one is a CaptureFormatError', () => {
    const capture = new PcapngWriter().section().iface({ linkType: 1 }).toBuffer();
    capture.writeUInt32LE(24, capture.length - 4);
    assert.equal(decodeError(capture).offset, capture.length - 4);
  });

  test('a classic record longer than 256 KiB is a CaptureFormatError at its length field', () => {
    const capture = classicPcap([{ frame: TCP4, seconds: T0, fraction: 0, capturedBytes: 300_000 }]);
    assert.equal(decodeError(capture).offset, 24 + 8);
  });

  test('inconsistent lengths, unknown link types and unknown interfaces are counted skips', () => {
    const pcap = classicPcap([{ frame: TCP4, seconds: T0, fraction: 0, wireBytes: 10 }]);
    const classic = decode(pcap).decoder.stats;
    assert.equal(classic.skipped[SkipReason.BAD_LENGTH], 1);
    const ng = new PcapngWriter()
      .section()
      .iface({ linkType: 147 })
      .epb(0, 1n, TCP4)
      .epb(3, 1n, TCP4)
      .toBuffer();
    const { decoder, flows } = decode(ng);
    assert.equal(flows.length, 0);
    assert.equal(decoder.stats.skipped[SkipReason.UNSUPPORTED_LINK_TYPE], 1);
    assert.equal(decoder.stats.skipped[SkipReason.UNKNOWN_INTERFACE], 1);
    assert.deepEqual([...decoder.stats.unsupportedLinkTypes], [[147, 1]]);
    assert.equal(decoder.stats.packets, 2);
  });

  test('a record longer than the snap length but whole in the file is read, as tshark reads it', () => {
    const pcap = classicPcap([{ frame: TCP4, seconds: T0, fraction: 0 }], { snapBytes: 40 });
    const ng = new PcapngWriter().section().iface({ linkType: 1, snapBytes: 40 }).epb(0, 1n, TCP4).toBuffer();
    for (const capture of [pcap, ng]) {
      const { flows, decoder } = decode(capture);
      assert.equal(decoder.stats.skippedTotal, 0);
      assert.equal(flows[0].bytes, TCP4.length);
    }
  });

  test('a file cut inside its last packet keeps the packets before and counts the cut one with its offset', () => {
    const capture = classicPcap([
      { frame: TCP4, seconds: T0, fraction: 0 },
      { frame: UDP6, seconds: T0, fraction: 0 },
    ]);
    const cut = capture.subarray(0, capture.length - 5);
    const { flows, decoder } = decode(cut, { chunkBytes: 13 });
    assert.equal(flows.length, 1);
    assert.equal(decoder.stats.skipped[SkipReason.TRUNCATED_END], 1);
    assert.equal(decoder.stats.truncatedEndOffset, 24 + 16 + TCP4.length);
  });

  test('headers cut by the snap length are told apart from parse errors in whole frames', () => {
    const capture = classicPcap([
      { frame: TCP4.subarray(0, 40), seconds: T0, fraction: 0, wireBytes: TCP4.length },
      { frame: TRUNCATED_TCP, seconds: T0, fraction: 0 },
    ]);
    const { stats } = decode(capture).decoder;
    assert.equal(stats.skipped[SkipReason.SNAPPED], 1);
    assert.equal(stats.skipped[SkipReason.PARSE_ERROR], 1);
    assert.equal(stats.counted, 0);
  });

  test('bad local networks and MACs are ConfigErrors', () => {
    assert.throws(() => parseLocalHosts('10.0.0.0/33', undefined), ConfigError);
    assert.throws(() => parseLocalHosts('fd00::/129', undefined), ConfigError);
    assert.throws(() => parseLocalHosts('banana', undefined), ConfigError);
    assert.throws(() => parseLocalHosts(undefined, '02:00:00:00:00'), ConfigError);
  });
});

describe('timestamps', () => {
  test('tick counts of every resolution convert to exact Unix nanoseconds', () => {
    const cases: [number, bigint, bigint][] = [
      [6, 1_700_000_000_123_456n, 1_700_000_000_123_456_000n],
      [9, 1_700_000_000_123_456_789n, 1_700_000_000_123_456_789n],
      [0, 1_700_000_000n, 1_700_000_000_000_000_000n],
      [0x80 | 20, (1_700_000_000n << 20n) + 3n, 1_700_000_000_000_002_861n],
      [0x80 | 30, (1_700_000_000n << 30n) + (1n << 29n), 1_700_000_000_500_000_000n],
      [12, 1_700_000_000_123_456_789_999n, 1_700_000_000_123_456_789n],
    ];
    for (const [tsresol, ticks, ns] of cases) {
      const resolution = new TickResolution(tsresol);
      resolution.convert(Number(ticks >> 32n), Number(ticks & 0xffffffffn));
      const out = Buffer.alloc(8);
      writeUnixNs(out, 0, resolution.seconds, resolution.nanos);
      assert.equal(out.readBigUInt64LE(0), ns, `tsresol 0x${tsresol.toString(16)}`);
    }
  });

  test('negative times are written as 0', () => {
    const out = Buffer.alloc(8, 0xff);
    writeUnixNs(out, 0, -5, 10);
    assert.equal(out.readBigUInt64LE(0), 0n);
  });
});
