/**
 * The capture's TCP analysis (src/capture/pcap/tcp-health.ts) on segments the tests build: which
 * packet's row gets a handshake time, which segments count as retransmissions and with how many
 * bytes, and that its state stays within its bound.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LinkType } from '../../../src/capture/packet/link-layers.ts';
import { NO_LOCAL_HOSTS } from '../../../src/capture/pcap/direction.ts';
import { PacketSink } from '../../../src/capture/pcap/packet-sink.ts';
import { TcpConnections } from '../../../src/capture/pcap/tcp-connections.ts';
import type { TcpHealthOptions } from '../../../src/capture/pcap/tcp-health.ts';
import { HealthFlag, V2, V2_RECORD_BYTES } from '../../../src/codec/v2-layout.ts';
import { Direction } from '../../../src/model/names.ts';
import {
  ACK,
  DEFAULT_ENDPOINTS,
  type Endpoints,
  FIN,
  PSH,
  type Segment,
  SYN,
  TcpConversation,
  tcpFrame,
} from './tcp-segments.ts';

const BASE_SECONDS = 1_700_000_000;
const MS = 1_000_000;
const ALL: TcpHealthOptions = { rtt: true, retransmissions: true, maxConnections: 1024 };

/** What the analysis wrote into one packet's row. */
interface RowHealth {
  handshakeNs: number | undefined;
  retransPackets: number;
  retransBytes: number;
}

/**
 * Where the capture was taken: `none` records no direction (every packet INGRESS, as a plain pcap
 * reads), `client` is the client's host (its packets EGRESS), `server` the server's.
 */
type Vantage = 'none' | 'client' | 'server';

/** Feeds `segments` to a PacketSink with TCP health on; returns its rows' health and the sink. */
function analyse(
  segments: readonly Segment[],
  options: TcpHealthOptions = ALL,
  endpoints: Endpoints = DEFAULT_ENDPOINTS,
  vantage: Vantage = 'none',
): { rows: RowHealth[]; sink: PacketSink; sectionRows: number } {
  const sink = new PacketSink(NO_LOCAL_HOSTS, 16, { tcpHealth: options });
  sink.addInterface(LinkType.ETHERNET, 'eth0');
  for (const s of segments) {
    const frame = tcpFrame(s, endpoints);
    const nanos = s.atNs % 1e9;
    const outgoing = vantage === 'client' ? s.fromClient : vantage === 'server' ? !s.fromClient : undefined;
    const direction = outgoing === undefined ? -1 : outgoing ? Direction.EGRESS : Direction.INGRESS;
    sink.packet(
      frame,
      0,
      frame.length,
      frame.length,
      0,
      BASE_SECONDS + (s.atNs - nanos) / 1e9,
      nanos,
      direction,
    );
  }
  // The packets' events as rows: each with the health section of its section row, if it has one.
  const events = sink.builder.finish();
  const batch = events.toRecordBatch();
  const b = batch.bytes;
  const rows: RowHealth[] = [];
  for (let i = 0; i < batch.count; i++) {
    const o = i * V2_RECORD_BYTES;
    rows.push({
      handshakeNs:
        (b[o + V2.HEALTH_FLAGS] & HealthFlag.HANDSHAKE) !== 0
          ? Number(b.readBigUInt64LE(o + V2.HANDSHAKE_RTT_NS))
          : undefined,
      retransPackets: Number(b.readBigUInt64LE(o + V2.RETRANS_PACKETS)),
      retransBytes: Number(b.readBigUInt64LE(o + V2.RETRANS_BYTES)),
    });
  }
  return { rows, sink, sectionRows: events.sections?.count ?? 0 };
}

/** Indexes of the rows marked as retransmissions. */
function retransmitted(rows: readonly RowHealth[]): number[] {
  return rows.flatMap((r, i) => (r.retransPackets > 0 ? [i] : []));
}

describe('handshake round-trip times', () => {
  test('where the SYN left (the client) SYN → SYN-ACK is written on the client flow with its next packet', () => {
    const c = new TcpConversation().handshake(5 * MS, 2 * MS).data(true, 100);
    const { rows } = analyse(c.segments, ALL, DEFAULT_ENDPOINTS, 'client');
    assert.deepEqual(
      rows.map((r) => r.handshakeNs),
      [undefined, undefined, 5 * MS, undefined],
      'on the handshake ACK, a packet of the client → server flow',
    );
  });

  test('where the SYN arrived (the server) SYN-ACK → ACK is written on the client flow, the ACK’s', () => {
    const c = new TcpConversation().handshake(5 * MS, 2 * MS);
    const { rows } = analyse(c.segments, ALL, DEFAULT_ENDPOINTS, 'server');
    assert.deepEqual(
      rows.map((r) => r.handshakeNs),
      [undefined, undefined, 2 * MS],
    );
  });

  test('a capture without directions times it as the side the SYN arrives at', () => {
    const c = new TcpConversation().handshake(5 * MS, 2 * MS);
    const { rows } = analyse(c.segments);
    assert.deepEqual(
      rows.map((r) => r.handshakeNs),
      [undefined, undefined, 2 * MS],
    );
  });

  test('an IPv6 handshake is timed the same way', () => {
    const c = new TcpConversation().handshake(7 * MS, 1 * MS);
    const v6 = { ...DEFAULT_ENDPOINTS, client: '2001:db8::1', server: '2001:db8::2' };
    assert.deepEqual(
      analyse(c.segments, ALL, v6, 'client').rows.map((r) => r.handshakeNs),
      [undefined, undefined, 7 * MS],
    );
    assert.deepEqual(
      analyse(c.segments, ALL, v6, 'server').rows.map((r) => r.handshakeNs),
      [undefined, undefined, 1 * MS],
    );
  });

  test('a SYN sent again is timed from the latest SYN, and is itself a retransmission', () => {
    const c = new TcpConversation();
    c.add(true, 1000, 0, SYN, 0);
    c.atNs += 1000 * MS;
    c.add(true, 1000, 0, SYN, 0);
    c.atNs += 3 * MS;
    c.add(false, 5000, 1001, SYN | ACK, 0);
    c.atNs += 1 * MS;
    c.add(true, 1001, 5001, ACK, 0);
    const { rows } = analyse(c.segments, ALL, DEFAULT_ENDPOINTS, 'client');
    assert.equal(rows[3].handshakeNs, 3 * MS);
    assert.deepEqual(retransmitted(rows), [1]);
    assert.equal(rows[1].retransBytes, 0, 'a SYN carries no payload');
  });

  test('a SYN-ACK sent again is timed from the latest one', () => {
    const c = new TcpConversation();
    c.add(true, 1000, 0, SYN, 0);
    c.atNs += 1 * MS;
    c.add(false, 5000, 1001, SYN | ACK, 0);
    c.atNs += 1000 * MS;
    c.add(false, 5000, 1001, SYN | ACK, 0);
    c.atNs += 4 * MS;
    c.add(true, 1001, 5001, ACK, 0);
    const { rows } = analyse(c.segments, ALL, DEFAULT_ENDPOINTS, 'server');
    assert.equal(rows[3].handshakeNs, 4 * MS);
  });

  test('only the packet acknowledging the SYN ends the measurement, once', () => {
    const c = new TcpConversation();
    c.add(true, 1000, 0, SYN, 0);
    c.atNs += 2 * MS;
    c.add(false, 5000, 999, SYN | ACK, 0); // acknowledges nothing the client sent
    c.atNs += 2 * MS;
    c.add(false, 5000, 1001, SYN | ACK, 0);
    c.atNs += 1 * MS;
    c.add(true, 1001, 4000, ACK, 0); // acknowledges nothing the server sent
    c.atNs += 1 * MS;
    c.add(true, 1001, 5001, ACK, 0);
    c.atNs += 1 * MS;
    c.add(true, 1001, 5001, ACK, 0); // a duplicate of the handshake's ACK
    assert.deepEqual(
      analyse(c.segments, ALL, DEFAULT_ENDPOINTS, 'client').rows.map((r) => r.handshakeNs),
      [undefined, undefined, undefined, 4 * MS, undefined, undefined],
    );
    assert.deepEqual(
      analyse(c.segments).rows.map((r) => r.handshakeNs),
      [undefined, undefined, undefined, undefined, 2 * MS, undefined],
    );
  });

  test('with RTT off no handshake is written', () => {
    const c = new TcpConversation().handshake(5 * MS, 2 * MS);
    const { rows, sink } = analyse(c.segments, { ...ALL, rtt: false }, DEFAULT_ENDPOINTS, 'client');
    assert.ok(rows.every((r) => r.handshakeNs === undefined));
    assert.equal(sink.stats.tcpHealth.handshakes, 0);
  });
});

describe('retransmissions', () => {
  test('a data segment sent again after a timeout is one retransmitted segment of its payload', () => {
    const c = new TcpConversation().handshake(MS, MS).data(true, 100).data(true, 200);
    c.segmentAt(true, 1101, 200, 200 * MS);
    const { rows, sink } = analyse(c.segments);
    assert.deepEqual(retransmitted(rows), [5]);
    assert.equal(rows[5].retransBytes, 200);
    assert.equal(sink.stats.tcpHealth.retransmittedSegments, 1);
  });

  test('pure ACKs, duplicate ACKs and window updates are never retransmissions', () => {
    const c = new TcpConversation().handshake(MS, MS).data(true, 100);
    c.ack(false).ack(false).ack(false).ack(false, 1000, undefined, 1000);
    const { rows } = analyse(c.segments);
    assert.deepEqual(retransmitted(rows), []);
  });

  test('a keep-alive (0 or 1 byte one below the next sequence) is not a retransmission', () => {
    const c = new TcpConversation().handshake(MS, MS).data(true, 100).ack(false);
    c.segmentAt(true, c.next[0] - 1, 0, 75_000 * MS, ACK);
    c.segmentAt(true, c.next[0] - 1, 1, 75_000 * MS, ACK);
    const { rows } = analyse(c.segments);
    assert.deepEqual(retransmitted(rows), []);
  });

  test('zero-window probes are not retransmissions, nor is the data that follows them', () => {
    const c = new TcpConversation().handshake(MS, MS).data(true, 100);
    c.ack(false, 1000, undefined, 0); // the server's window is closed
    const probeSeq = c.next[0];
    c.segmentAt(true, probeSeq, 1, 200 * MS);
    c.segmentAt(true, probeSeq, 1, 400 * MS);
    c.ack(false, 1000, undefined, 1000); // open again
    c.data(true, 300, 10 * MS);
    const { rows } = analyse(c.segments);
    assert.deepEqual(retransmitted(rows), []);
  });

  test('a segment arriving within the reordering window that fills a hole is reordering, not a retransmission', () => {
    const c = new TcpConversation().handshake(10 * MS, 10 * MS);
    const first = c.next[0];
    c.segmentAt(true, first + 100, 100, MS); // the second segment overtakes the first
    c.segmentAt(true, first, 100, MS / 2);
    const { rows } = analyse(c.segments);
    assert.deepEqual(retransmitted(rows), []);
  });

  test('the same segment arriving after the reordering window is a retransmission', () => {
    const c = new TcpConversation().handshake(MS, MS);
    const first = c.next[0];
    c.segmentAt(true, first + 100, 100, MS);
    c.segmentAt(true, first, 100, 5 * MS); // later than the handshake's 2 ms RTT
    const { rows } = analyse(c.segments);
    assert.deepEqual(retransmitted(rows), [4]);
  });

  test('a fast retransmission after two duplicate ACKs counts even inside the reordering window', () => {
    const c = new TcpConversation().handshake(10 * MS, 10 * MS).data(true, 100);
    const lost = c.next[0];
    c.data(true, 100).data(true, 100).data(true, 100);
    c.ack(false, 100, lost).ack(false, 100, lost).ack(false, 100, lost);
    c.segmentAt(true, lost, 100, 100);
    const { rows } = analyse(c.segments);
    assert.deepEqual(retransmitted(rows), [10]);
    assert.equal(rows[10].retransBytes, 100);
  });

  test('data the other side already acknowledged, sent again, is a (spurious) retransmission', () => {
    const c = new TcpConversation().handshake(MS, MS).data(true, 100).ack(false);
    c.segmentAt(true, 1001, 100, 300 * MS);
    const { rows } = analyse(c.segments);
    assert.deepEqual(retransmitted(rows), [5]);
  });

  test('a FIN sent again is a retransmitted segment of no bytes', () => {
    const c = new TcpConversation().handshake(MS, MS);
    const fin = c.next[0];
    c.segmentAt(true, fin, 0, MS, FIN | ACK);
    c.segmentAt(true, fin, 0, 300 * MS, FIN | ACK);
    const { rows } = analyse(c.segments);
    assert.deepEqual(retransmitted(rows), [4]);
    assert.equal(rows[4].retransBytes, 0);
  });

  test('the payload length comes from the IP header, not from a padded frame', () => {
    const c = new TcpConversation().handshake(MS, MS).data(true, 3);
    c.segmentAt(true, 1001, 3, 300 * MS);
    const { rows } = analyse(c.segments);
    assert.equal(tcpFrame(c.segments[4]).length, 60, 'the frame is padded');
    assert.equal(rows[4].retransBytes, 3);
  });

  test('a new connection on the same ports (another ISN) starts its sequence space over', () => {
    const c = new TcpConversation().handshake(MS, MS).data(true, 100).data(true, 100);
    c.atNs += 1000 * MS;
    c.add(true, 500, 0, SYN, 0);
    c.atNs += MS;
    c.add(false, 9000, 501, SYN | ACK, 0);
    c.atNs += MS;
    c.add(true, 501, 9001, ACK, 0);
    c.atNs += MS;
    c.add(true, 501, 9001, ACK | PSH, 100);
    const { rows } = analyse(c.segments);
    assert.deepEqual(retransmitted(rows), []);
    assert.equal(rows[7].handshakeNs, MS, 'the new handshake is timed');
  });

  test('only the packets the analysis measured get a section row', () => {
    const c = new TcpConversation().handshake(MS, MS).data(true, 100).data(false, 100);
    c.segmentAt(true, 1001, 100, 300 * MS);
    const { rows, sectionRows } = analyse(c.segments);
    const measured = rows.filter((r) => r.handshakeNs !== undefined || r.retransPackets > 0).length;
    assert.equal(measured, 2, 'the handshake and the retransmission');
    assert.equal(sectionRows, measured);
    assert.ok(rows.length > measured);
  });

  test('with retransmissions off nothing is marked', () => {
    const c = new TcpConversation().handshake(MS, MS).data(true, 100);
    c.segmentAt(true, 1001, 100, 300 * MS);
    const { rows } = analyse(c.segments, { ...ALL, retransmissions: false });
    assert.deepEqual(retransmitted(rows), []);
  });
});

describe('bounds', () => {
  test('the connection table stops growing at its bound however many connections come', () => {
    const table = new TcpConnections(64);
    const row = new Int32Array(V2_RECORD_BYTES / 4);
    const fill = (from: number, to: number) => {
      for (let port = from; port < to; port++) {
        row[V2.SRC_PORT / 4] = port; // the source port is the low half of its word
        table.sideOf(row, 0);
      }
    };
    fill(0, 64);
    const full = table.heapBytes;
    fill(64, 64 * 20);
    assert.equal(table.heapBytes, full);
    assert.equal(table.resets, 19);
    assert.ok(table.size <= 64);
  });

  test('connections beyond the bound start the table over, counted, and are each timed', () => {
    const segments: Segment[] = [];
    for (let port = 0; port < 50; port++) {
      const c = new TcpConversation().handshake(MS, MS);
      for (const s of c.segments) segments.push({ ...s, atNs: s.atNs + port * 10 * MS });
    }
    // Each connection on its own client port.
    const sink = new PacketSink(NO_LOCAL_HOSTS, 16, { tcpHealth: { ...ALL, maxConnections: 8 } });
    sink.addInterface(LinkType.ETHERNET, 'eth0');
    segments.forEach((s, i) => {
      const frame = tcpFrame(s, { ...DEFAULT_ENDPOINTS, clientPort: 30000 + Math.floor(i / 3) });
      sink.packet(frame, 0, frame.length, frame.length, 0, BASE_SECONDS, s.atNs, -1);
    });
    assert.equal(sink.stats.tcpHealth.tableResets, Math.floor((50 - 1) / 8));
    assert.equal(sink.stats.tcpHealth.handshakes, 50, 'each connection is timed within its own state');
  });

  test('a TCP header cut before its window field is counted as snapped and not analysed', () => {
    const c = new TcpConversation().handshake(MS, MS);
    const sink = new PacketSink(NO_LOCAL_HOSTS, 16, { tcpHealth: ALL });
    sink.addInterface(LinkType.ETHERNET, 'eth0');
    for (const s of c.segments) {
      const frame = tcpFrame(s);
      // Ethernet 14 + IPv4 20 + 14 bytes of TCP: enough for the key, not for the window.
      sink.packet(frame, 0, 48, frame.length, 0, BASE_SECONDS, s.atNs, -1);
    }
    assert.equal(sink.stats.counted, 3);
    assert.equal(sink.stats.tcpHealth.snapped, 3);
    assert.equal(sink.stats.tcpHealth.handshakes, 0);
  });
});
