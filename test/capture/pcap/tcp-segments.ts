/**
 * TCP segments for tests of the capture's TCP analysis: whole Ethernet frames of one connection
 * between a client and a server, built from sequence numbers, flags and payload lengths, with the
 * time each is seen. Checksums are zero: nothing in flowtap verifies them.
 */

/** TCP flag bits. */
export const FIN = 0x01;
export const SYN = 0x02;
export const RST = 0x04;
export const PSH = 0x08;
export const ACK = 0x10;

/** One segment of a {@link TcpConversation}. */
export interface Segment {
  /** Sent by the client (true) or the server. */
  fromClient: boolean;
  seq: number;
  ack: number;
  flags: number;
  /** Payload bytes (zeros). */
  payload: number;
  /** Window field (default 502). */
  window?: number;
  /** Time seen, nanoseconds since the conversation's start. */
  atNs: number;
}

/** Endpoints of a conversation; IPv6 when the addresses contain ':'. */
export interface Endpoints {
  client: string;
  server: string;
  clientPort: number;
  serverPort: number;
}

export const DEFAULT_ENDPOINTS: Endpoints = {
  client: '10.0.0.1',
  server: '10.0.0.2',
  clientPort: 40000,
  serverPort: 80,
};

const CLIENT_MAC = [2, 0, 0, 0, 0, 1];
const SERVER_MAC = [2, 0, 0, 0, 0, 2];
const MIN_ETHERNET_FRAME = 60;

function ipv4Bytes(text: string): number[] {
  return text.split('.').map(Number);
}

function ipv6Bytes(text: string): number[] {
  const [head, tail = ''] = text.split('::');
  const words = (part: string) => (part === '' ? [] : part.split(':').map((w) => Number.parseInt(w, 16)));
  const h = words(head);
  const t = text.includes('::') ? words(tail) : [];
  const all = [...h, ...new Array(8 - h.length - t.length).fill(0), ...t];
  return all.flatMap((w) => [w >> 8, w & 0xff]);
}

/**
 * The Ethernet frame of `segment` (IPv4 or IPv6 by the addresses), padded to 60 bytes as a NIC
 * pads short frames, so the payload length must come from the IP header.
 */
export function tcpFrame(segment: Segment, endpoints: Endpoints = DEFAULT_ENDPOINTS): Buffer {
  const v6 = endpoints.client.includes(':');
  const [srcAddr, dstAddr] = segment.fromClient
    ? [endpoints.client, endpoints.server]
    : [endpoints.server, endpoints.client];
  const [srcPort, dstPort] = segment.fromClient
    ? [endpoints.clientPort, endpoints.serverPort]
    : [endpoints.serverPort, endpoints.clientPort];
  const tcp = Buffer.alloc(20 + segment.payload);
  tcp.writeUInt16BE(srcPort, 0);
  tcp.writeUInt16BE(dstPort, 2);
  tcp.writeUInt32BE(segment.seq >>> 0, 4);
  tcp.writeUInt32BE(segment.ack >>> 0, 8);
  tcp[12] = 5 << 4;
  tcp[13] = segment.flags;
  tcp.writeUInt16BE(segment.window ?? 502, 14);
  let ip: Buffer;
  if (v6) {
    ip = Buffer.alloc(40);
    ip[0] = 0x60;
    ip.writeUInt16BE(tcp.length, 4);
    ip[6] = 6;
    ip[7] = 64;
    Buffer.from(ipv6Bytes(srcAddr)).copy(ip, 8);
    Buffer.from(ipv6Bytes(dstAddr)).copy(ip, 24);
  } else {
    ip = Buffer.alloc(20);
    ip[0] = 0x45;
    ip.writeUInt16BE(20 + tcp.length, 2);
    ip[8] = 64;
    ip[9] = 6;
    Buffer.from(ipv4Bytes(srcAddr)).copy(ip, 12);
    Buffer.from(ipv4Bytes(dstAddr)).copy(ip, 16);
  }
  const [dstMac, srcMac] = segment.fromClient ? [SERVER_MAC, CLIENT_MAC] : [CLIENT_MAC, SERVER_MAC];
  const ethernet = Buffer.from([...dstMac, ...srcMac, v6 ? 0x86 : 0x08, v6 ? 0xdd : 0x00]);
  const frame = Buffer.concat([ethernet, ip, tcp]);
  return frame.length >= MIN_ETHERNET_FRAME
    ? frame
    : Buffer.concat([frame, Buffer.alloc(MIN_ETHERNET_FRAME - frame.length)]);
}

/**
 * Builds a conversation segment by segment, keeping each side's next sequence number so tests
 * say what happens (`data`, `ack`, `retransmit`) rather than compute sequence numbers.
 */
export class TcpConversation {
  readonly segments: Segment[] = [];
  /** Next sequence number each side sends: client, server. */
  readonly next = [1000, 5000];
  /** Time of the next segment, ns. */
  atNs = 0;

  /** The three-way handshake: SYN, then SYN-ACK after `synAckNs`, then ACK after `ackNs`. */
  handshake(synAckNs: number, ackNs: number): this {
    this.add(true, this.next[0], 0, SYN, 0);
    this.next[0]++;
    this.atNs += synAckNs;
    this.add(false, this.next[1], this.next[0], SYN | ACK, 0);
    this.next[1]++;
    this.atNs += ackNs;
    this.add(true, this.next[0], this.next[1], ACK, 0);
    return this;
  }

  /** New data of `bytes` from one side, `afterNs` after the previous segment. */
  data(fromClient: boolean, bytes: number, afterNs = 1000): this {
    const side = fromClient ? 0 : 1;
    this.atNs += afterNs;
    this.add(fromClient, this.next[side], this.next[1 - side], ACK | PSH, bytes);
    this.next[side] += bytes;
    return this;
  }

  /** A pure ACK from one side acknowledging `ackSeq` (default: all the other side sent). */
  ack(fromClient: boolean, afterNs = 1000, ackSeq?: number, window?: number): this {
    const side = fromClient ? 0 : 1;
    this.atNs += afterNs;
    this.add(fromClient, this.next[side], ackSeq ?? this.next[1 - side], ACK, 0, window);
    return this;
  }

  /** A segment at an explicit sequence number (a retransmission, a probe), not moving `next`. */
  segmentAt(fromClient: boolean, seq: number, bytes: number, afterNs: number, flags = ACK | PSH): this {
    const side = fromClient ? 0 : 1;
    this.atNs += afterNs;
    this.add(fromClient, seq, this.next[1 - side], flags, bytes);
    return this;
  }

  /** Appends a segment as given at the current time. */
  add(fromClient: boolean, seq: number, ack: number, flags: number, payload: number, window?: number): this {
    this.segments.push({ fromClient, seq, ack, flags, payload, window, atNs: this.atNs });
    return this;
  }
}
