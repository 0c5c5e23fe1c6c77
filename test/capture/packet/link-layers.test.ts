import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LinkType } from '../../../src/capture/packet/link-layers.ts';
import { CaptureDecoder } from '../../../src/capture/pcap/capture-decoder.ts';
import { SkipReason } from '../../../src/capture/pcap/packet-sink.ts';
import type { Flow } from '../../../src/model/flow.ts';
import { formatIp } from '../../../src/model/ip.ts';
import { formatMac } from '../../../src/model/mac.ts';
import { PACKET_VECTORS, type PacketVector, VECTOR_DST_MAC, VECTOR_SRC_MAC } from '../../vectors/packets.ts';
import { classicPcap, PcapngWriter } from '../pcap/capture-files.ts';
import { LINK_CASES, ppi, radiotap, wlanBeacon, wlanData } from '../pcap/link-frames.ts';

const T0 = 1_700_000_000;
const ZERO_MAC = '00:00:00:00:00:00';

function decode(capture: Buffer): { flows: Flow[]; decoder: CaptureDecoder } {
  const decoder = new CaptureDecoder();
  const batch = decoder.push(capture);
  decoder.end();
  return { flows: batch ? [...batch.flows()] : [], decoder };
}

/** The vectors whose Ethernet frame carries IP of a version in `versions` right after the MACs. */
function ipVectors(versions: readonly (4 | 6)[]): PacketVector[] {
  return PACKET_VECTORS.filter((v) => {
    const etype = Buffer.from(v.frame, 'hex').readUInt16BE(12);
    return (etype === 0x0800 && versions.includes(4)) || (etype === 0x86dd && versions.includes(6));
  });
}

function captures(linkType: number, frames: Buffer[]): [string, Buffer][] {
  const pcap = classicPcap(
    frames.map((frame, i) => ({ frame, seconds: T0, fraction: i })),
    { linkType },
  );
  const ng = new PcapngWriter().section().iface({ linkType, name: 'wlan0' });
  for (const [i, frame] of frames.entries()) ng.epb(0, BigInt(T0) * 1_000_000n + BigInt(i), frame);
  return [
    ['pcap', pcap],
    ['pcapng', ng.toBuffer()],
  ];
}

describe('link types', () => {
  for (const c of LINK_CASES) {
    test(`${c.name} (link type ${c.linkType}) gives every vector's key, or its parse error, in pcap and pcapng`, () => {
      const vectors = ipVectors(c.versions);
      const frames = vectors.map((v) => c.wrap(Buffer.from(v.frame, 'hex')));
      const expected = vectors.flatMap((v) =>
        'parseError' in v.expected ? [] : [{ ...v.expected, name: v.name }],
      );
      for (const [format, capture] of captures(c.linkType, frames)) {
        const { flows, decoder } = decode(capture);
        assert.equal(decoder.stats.skipped[SkipReason.PARSE_ERROR], vectors.length - expected.length, format);
        assert.equal(decoder.stats.skippedTotal, vectors.length - expected.length, format);
        assert.equal(flows.length, expected.length, format);
        flows.forEach((flow, i) => {
          const { name, ...e } = expected[i];
          assert.deepEqual(
            {
              etype: flow.etype,
              proto: flow.proto,
              srcAddr: formatIp(flow.srcAddr, 0, flow.etype),
              dstAddr: formatIp(flow.dstAddr, 0, flow.etype),
              srcPort: flow.srcPort,
              dstPort: flow.dstPort,
              icmpType: flow.icmpType,
              icmpCode: flow.icmpCode,
              tcpFlags: flow.tcpFlags,
              dscp: flow.dscp,
              bytes: flow.bytes,
            },
            // 802.11 counts as the Ethernet frame its device hands the kernel; the rest as IP.
            { ...e, bytes: c.ethernetLike ? e.bytes : e.bytes - 14 },
            `${format} ${name}`,
          );
          assert.deepEqual(
            [formatMac(flow.srcMac), formatMac(flow.dstMac)],
            c.ethernetLike ? [VECTOR_SRC_MAC, VECTOR_DST_MAC] : [ZERO_MAC, ZERO_MAC],
            `${format} ${name}`,
          );
        });
      }
    });
  }
});

describe('frames without a readable packet', () => {
  const tcp4 = Buffer.from(PACKET_VECTORS[0].frame, 'hex');

  test('802.11 management, null-data and non-SNAP frames are link-control skips, encrypted ones encrypted', () => {
    const nullData = wlanData(tcp4, { qos: true });
    nullData[0] = 0xc8; // QoS Null: a data subtype without payload
    const notSnap = wlanData(tcp4);
    notSnap[24] = 0x42; // LLC of spanning tree, not SNAP
    const frames = [wlanBeacon(), nullData, notSnap, wlanData(tcp4, { protectedFrame: true })];
    const { flows, decoder } = decode(
      classicPcap(
        frames.map((frame) => ({ frame, seconds: T0, fraction: 0 })),
        {
          linkType: LinkType.IEEE802_11,
        },
      ),
    );
    assert.equal(flows.length, 0);
    assert.equal(decoder.stats.skipped[SkipReason.LINK_CONTROL], 3);
    assert.equal(decoder.stats.skipped[SkipReason.ENCRYPTED], 1);
  });

  test('PPP control protocols and loopback families other than IP are link-control skips', () => {
    const lcp = Buffer.from([0xff, 0x03, 0xc0, 0x21, 0x01, 0x01, 0x00, 0x04]);
    const ppp = decode(classicPcap([{ frame: lcp, seconds: T0, fraction: 0 }], { linkType: LinkType.PPP }));
    assert.equal(ppp.decoder.stats.skipped[SkipReason.LINK_CONTROL], 1);
    const appletalk = Buffer.concat([Buffer.from([16, 0, 0, 0]), tcp4.subarray(14)]);
    const loop = decode(
      classicPcap([{ frame: appletalk, seconds: T0, fraction: 0 }], { linkType: LinkType.NULL }),
    );
    assert.equal(loop.decoder.stats.skipped[SkipReason.LINK_CONTROL], 1);
  });

  test('a PPI header naming a link type flowtap does not read counts that link type as passed over', () => {
    const frames = [ppi(tcp4, 147), ppi(tcp4, 147), ppi(tcp4, LinkType.ETHERNET)];
    const { flows, decoder } = decode(
      classicPcap(
        frames.map((frame) => ({ frame, seconds: T0, fraction: 0 })),
        { linkType: LinkType.PPI },
      ),
    );
    assert.equal(flows.length, 1);
    assert.equal(flows[0].bytes, tcp4.length);
    assert.equal(decoder.stats.skipped[SkipReason.UNSUPPORTED_LINK_TYPE], 2);
    assert.deepEqual([...decoder.stats.unsupportedLinkTypes], [[147, 2]]);
  });

  test('an 802.11 frame cut by the snap length inside its headers is snapped, not a parse error', () => {
    const frame = radiotap(wlanData(tcp4, { qos: true }));
    const { decoder } = decode(
      classicPcap([{ frame: frame.subarray(0, 40), seconds: T0, fraction: 0, wireBytes: frame.length }], {
        linkType: LinkType.IEEE802_11_RADIOTAP,
      }),
    );
    assert.equal(decoder.stats.skipped[SkipReason.SNAPPED], 1);
  });
});
