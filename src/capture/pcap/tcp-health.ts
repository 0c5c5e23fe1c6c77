/**
 * TCP health of a capture's flows (docs/flow-key.md, "TCP health in a capture"): the handshake
 * round-trip times and the retransmitted segments `flowtap read` can see, written into the health
 * section of the packet's section row (only for the packets that have one:
 * src/codec/event-sections.ts), so the accounter sums them per flow (src/codec/merge-rule.ts)
 * and every output carries them under the same names as the live datapath's.
 *
 * - **Handshake RTT**, as the live datapath times it: on the client → server flow (the SYN's),
 *   SYN → SYN-ACK when the SYN left the observation point (EGRESS: the host is the client), else
 *   SYN-ACK → ACK (the SYN arrived: the host is the server, or the capture recorded no
 *   direction); from the latest SYN or SYN-ACK to the first packet of the other side that
 *   acknowledges it (ack = ISN + 1), on the capture's own clock.
 * - **Retransmissions**: a segment carrying data, SYN or FIN whose sequence range starts below
 *   the highest sequence its side already sent (or whose data the other side already
 *   acknowledged) repeats what the flow sent before: one retransmitted segment, its payload bytes.
 *   Keep-alives are not, nor zero-window probes (a first probe carries the next byte, a repeated
 *   one is a keep-alive); a segment arriving within the handshake's RTT (3 ms without one) of the
 *   one that advanced the sequence, and not ending where it did, is reordering, not a
 *   retransmission, unless it is the segment two duplicate ACKs asked for (a fast
 *   retransmission). These are Wireshark's rules (`tcp.analysis.retransmission`, which includes
 *   its fast and spurious retransmissions), so a capture's counts can be checked with tshark.
 *
 * State is kept per connection in a bounded table (src/capture/pcap/tcp-connections.ts).
 */
import type { EventBatchBuilder } from '../../codec/event-batch.ts';
import { HealthFlag, V2, V2_KEY_WORDS } from '../../codec/v2-layout.ts';
import { Direction, IpProto, TcpFlag } from '../../model/names.ts';
import { TWO_POW_32 } from '../../model/u64.ts';
import { lastIpPacketEnd, lastTcpHeaderOffset } from '../packet/frame-parser.ts';
import { ConnectionTime, SideFlag, SideTime, SideWord, TcpConnections } from './tcp-connections.ts';

/** What a {@link TcpHealth} measures. */
export interface TcpHealthOptions {
  /** Handshake round-trip times (ENABLE_RTT). */
  readonly rtt: boolean;
  /** Retransmitted segments (ENABLE_TCP_RETRANS). */
  readonly retransmissions: boolean;
  /** Connections followed at once (CACHE_MAX_FLOWS). */
  readonly maxConnections: number;
}

/** Counts of one read's TCP analysis, for the summary. */
export interface TcpHealthStats {
  /** Handshake times measured. */
  handshakes: number;
  /** Retransmitted segments found. */
  retransmittedSegments: number;
  /** TCP packets whose header was cut off before its window field: not analysed. */
  snapped: number;
  /** Times the connection table was full and started over. */
  tableResets: number;
}

/** Counts before anything was analysed. */
export function emptyTcpHealthStats(): TcpHealthStats {
  return { handshakes: 0, retransmittedSegments: 0, snapped: 0, tableResets: 0 };
}

const TCP_FIN = TcpFlag.FIN;
const TCP_SYN = TcpFlag.SYN;
const TCP_RST = TcpFlag.RST;
const TCP_ACK = TcpFlag.ACK;
const PROTO_TCP = IpProto.TCP;
/** Bytes of a TCP header up to and including the window field. */
const TCP_HEADER_THROUGH_WINDOW = 16;
/** Wireshark's out-of-order threshold when the handshake's RTT is not known. */
const DEFAULT_REORDER_WINDOW_NS = 3_000_000;
/** A retransmission of the segment two duplicate ACKs asked for, this soon after the last: fast. */
const FAST_RETRANSMISSION_WINDOW_NS = 20_000_000;
const NS_PER_S = 1e9;
// Field offsets of a connection record (tcp-connections.ts), as plain numbers for the hot path.
const { NEXT_SEQ, LAST_ACK, ISN, DUP_ACKS, WINDOW, FLAGS } = SideWord;
const { NEXT_SEQ_NS, LAST_SEGMENT_NS, HANDSHAKE_SENT_NS } = SideTime;
const { LATEST_SYN_NS, INITIAL_RTT_NS } = ConnectionTime;

/** `a < b` in sequence space (RFC 1982 serial numbers). */
function seqLess(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

/** Writes the non-negative integer `value` (below 2^53) as a u64 at `at`. */
function writeU64(out: Uint8Array, at: number, value: number): void {
  const hi = Math.floor(value / TWO_POW_32);
  const lo = value - hi * TWO_POW_32;
  for (let i = 0; i < 4; i++) {
    out[at + i] = (lo >>> (i * 8)) & 0xff;
    out[at + 4 + i] = (hi >>> (i * 8)) & 0xff;
  }
}

/** Follows a capture's TCP connections and writes what it measures into packet rows. */
export class TcpHealth {
  readonly #connections: TcpConnections;
  readonly #rtt: boolean;
  readonly #retransmissions: boolean;
  /** Second of the first packet: times are kept as nanoseconds since it, exact in a double. */
  #baseSeconds = Number.NaN;
  /** The rows' buffer seen as words (made again when the builder moves to another buffer). */
  #rowWords: Int32Array<ArrayBufferLike> = new Int32Array(0);
  /** The buffer `#rowWords` views. */
  #rowBytes: Uint8Array | undefined;
  /** Where the current row starts in the words given by {@link #rowWordsOf}. */
  #rowWordAt = 0;
  /** A row's key words, for a buffer whose rows are not 4-byte aligned. */
  readonly #alignedKey = new Int32Array(V2_KEY_WORDS);

  /** `stats` is where the counts go (the read's CaptureStats keeps it). */
  constructor(
    options: TcpHealthOptions,
    readonly stats: TcpHealthStats = emptyTcpHealthStats(),
  ) {
    this.#connections = new TcpConnections(options.maxConnections);
    this.#rtt = options.rtt;
    this.#retransmissions = options.retransmissions;
  }

  /** Bytes the connection table occupies. */
  get heapBytes(): number {
    return this.#connections.heapBytes;
  }

  /**
   * Analyses the packet just parsed into the event at byte `row` of `builder.bytes` (a counted
   * packet: key, direction and times written) if it is TCP: `data[frameOff, frameOff + captured)` is its frame
   * as captured, `wireBytes` long on the wire, seen at Unix time `seconds` + `nanos`.
   */
  observe(
    data: Uint8Array,
    frameOff: number,
    captured: number,
    wireBytes: number,
    seconds: number,
    nanos: number,
    builder: EventBatchBuilder,
    row: number,
  ): void {
    const out = builder.bytes;
    if (out[row + V2.TRANSPORT_PROTOCOL] !== PROTO_TCP) return;
    const tcp = lastTcpHeaderOffset();
    if (tcp < 0) return;
    if (frameOff + captured - tcp < TCP_HEADER_THROUGH_WINDOW) {
      this.stats.snapped++;
      return;
    }
    const headerEnd = tcp + (data[tcp + 12] >>> 4) * 4;
    const ipEnd = lastIpPacketEnd();
    const seglen = (ipEnd >= 0 ? ipEnd : frameOff + wireBytes) - headerEnd;
    if (seglen < 0) return; // lengths that contradict each other: nothing to measure
    if (Number.isNaN(this.#baseSeconds)) this.#baseSeconds = seconds;
    const t = (seconds - this.#baseSeconds) * NS_PER_S + nanos;
    const seq = (data[tcp + 4] << 24) | (data[tcp + 5] << 16) | (data[tcp + 6] << 8) | data[tcp + 7];
    const ack = (data[tcp + 8] << 24) | (data[tcp + 9] << 16) | (data[tcp + 10] << 8) | data[tcp + 11];
    const flags = data[tcp + 13];
    const window = (data[tcp + 14] << 8) | data[tcp + 15];
    const connections = this.#connections;
    const resetsBefore = connections.resets;
    const d = connections.sideOf(this.#rowWordsOf(out, row), this.#rowWordAt);
    this.stats.tableResets += connections.resets - resetsBefore;
    this.#handshake(d, seq, ack, flags, t, builder, row);
    if (this.#retransmissions) this.#sequence(d, seq, ack, flags, window, seglen, t, builder, row);
  }

  /** The words of the row at byte `row` of `out`, its first at `#rowWordAt`. */
  #rowWordsOf(out: Uint8Array, row: number): Int32Array<ArrayBufferLike> {
    if (out !== this.#rowBytes && out.byteOffset % 4 !== 0) {
      // Never so for a RecordBatchBuilder's buffers (each its own allocation); kept correct anyway.
      for (let i = 0; i < V2_KEY_WORDS; i++) {
        const at = row + i * 4;
        this.#alignedKey[i] = out[at] | (out[at + 1] << 8) | (out[at + 2] << 16) | (out[at + 3] << 24);
      }
      this.#rowWordAt = 0;
      return this.#alignedKey;
    }
    if (out !== this.#rowBytes) {
      this.#rowBytes = out;
      this.#rowWords = new Int32Array(out.buffer, out.byteOffset, out.length >> 2);
    }
    this.#rowWordAt = row >> 2;
    return this.#rowWords;
  }

  /** SYN bookkeeping and the handshake times (see the module comment). */
  #handshake(
    d: number,
    seq: number,
    ack: number,
    flags: number,
    t: number,
    builder: EventBatchBuilder,
    row: number,
  ): void {
    const c = this.#connections;
    const words = c.words;
    const times = c.times;
    const own = c.wordsOf(d);
    const other = c.wordsOf(d ^ 1);
    const conn = c.connectionTimesOf(d >> 1);
    if ((words[own + FLAGS] & SideFlag.HANDSHAKE_READY) !== 0) {
      // The client's time, measured at the SYN-ACK: this is the client's next packet.
      words[own + FLAGS] &= ~SideFlag.HANDSHAKE_READY;
      this.#writeHandshake(builder, row, times[c.timesOf(d) + HANDSHAKE_SENT_NS]);
    }
    if ((flags & TCP_SYN) !== 0) {
      const synAck = (flags & TCP_ACK) !== 0;
      // A SYN with another ISN on the same ports is a new connection.
      if (!synAck && (words[own + FLAGS] & SideFlag.SYN_SEEN) !== 0 && words[own + ISN] !== seq) {
        c.restart(d >> 1);
      }
      words[own + ISN] = seq;
      words[own + FLAGS] |= SideFlag.SYN_SEEN;
      if (!synAck) {
        times[conn + LATEST_SYN_NS] = t;
        if (builder.bytes[row + V2.DIRECTION] === Direction.EGRESS) words[own + FLAGS] |= SideFlag.SYN_EGRESS;
        else words[own + FLAGS] &= ~SideFlag.SYN_EGRESS;
      }
      if ((words[own + FLAGS] & SideFlag.HANDSHAKE_DONE) === 0) {
        times[c.timesOf(d) + HANDSHAKE_SENT_NS] = t;
        words[own + FLAGS] |= SideFlag.HANDSHAKE_PENDING | (synAck ? SideFlag.HANDSHAKE_SYNACK : 0);
      }
    }
    if ((flags & TCP_ACK) === 0) return;
    if ((flags & TCP_SYN) === 0 && times[conn + INITIAL_RTT_NS] === 0 && times[conn + LATEST_SYN_NS] <= t) {
      // Wireshark's initial RTT, its out-of-order threshold: the latest SYN to the first ACK
      // (0 stays unknown, as in Wireshark, and is measured again).
      times[conn + INITIAL_RTT_NS] = t - times[conn + LATEST_SYN_NS];
    }
    const pending = words[other + FLAGS];
    if ((pending & SideFlag.HANDSHAKE_PENDING) === 0 || ack !== ((words[other + ISN] + 1) | 0)) return;
    // A SYN is answered by a SYN-ACK, a SYN-ACK by a segment without SYN.
    const answersSynAck = (pending & SideFlag.HANDSHAKE_SYNACK) !== 0;
    if (((flags & TCP_SYN) !== 0) === answersSynAck) return;
    words[other + FLAGS] = (pending & ~SideFlag.HANDSHAKE_PENDING) | SideFlag.HANDSHAKE_DONE;
    const sentAt = c.timesOf(d ^ 1) + HANDSHAKE_SENT_NS;
    const rttNs = t - times[sentAt];
    if (!this.#rtt || !(rttNs >= 0)) return;
    if (!answersSynAck) {
      // The server's SYN-ACK answers the client's SYN: timed when the SYN left (the client
      // side), and written on the client's flow with its next packet.
      if ((pending & SideFlag.SYN_EGRESS) === 0) return;
      times[sentAt] = rttNs;
      words[other + FLAGS] |= SideFlag.HANDSHAKE_READY;
    } else if ((words[own + FLAGS] & SideFlag.SYN_EGRESS) === 0) {
      // The client's ACK answers the SYN-ACK: timed when the SYN arrived (the server side, or a
      // capture without directions), on the client's flow, this packet's.
      this.#writeHandshake(builder, row, rttNs);
    }
  }

  #writeHandshake(builder: EventBatchBuilder, row: number, rttNs: number): void {
    const s = builder.sectionRowOf(row);
    const sections = builder.sections.bytes;
    writeU64(sections, s + V2.HANDSHAKE_RTT_NS, rttNs);
    sections[s + V2.HEALTH_FLAGS] |= HealthFlag.HANDSHAKE;
    this.stats.handshakes++;
  }

  /**
   * Wireshark's sequence analysis of one segment, reduced to what retransmissions need: keep-alive,
   * duplicate ACKs, then retransmission; then the side's state moves on.
   */
  #sequence(
    d: number,
    seq: number,
    ack: number,
    flags: number,
    window: number,
    seglen: number,
    t: number,
    builder: EventBatchBuilder,
    row: number,
  ): void {
    const c = this.#connections;
    const words = c.words;
    const own = c.wordsOf(d);
    const ownFlags = words[own + FLAGS];
    const seqKnown = (ownFlags & SideFlag.SEQ_KNOWN) !== 0;
    const nextSeq = words[own + NEXT_SEQ];
    const lastAck = words[own + LAST_ACK];
    const plain = (flags & (TCP_SYN | TCP_FIN | TCP_RST)) === 0;
    // A zero-window probe of one new byte advances the sequence; sent again, it is a keep-alive.
    const keepalive = seglen <= 1 && seqKnown && seq === ((nextSeq - 1) | 0) && plain;
    const repeatsLast =
      seglen === 0 &&
      plain &&
      seqKnown &&
      seq === nextSeq &&
      ack === lastAck &&
      window !== 0 &&
      window === words[own + WINDOW];
    // A repeated ACK answering the other side's keep-alive is not a duplicate ACK.
    if (repeatsLast && (words[c.wordsOf(d ^ 1) + FLAGS] & SideFlag.LAST_KEEPALIVE) === 0) {
      words[own + DUP_ACKS]++;
    }
    if (ack !== lastAck) words[own + DUP_ACKS] = 0;

    const carriesSequence = seglen > 0 || (flags & (TCP_SYN | TCP_FIN)) !== 0;
    if (carriesSequence && !keepalive && this.#isRetransmission(d, seq, seglen, flags, t)) {
      const s = builder.sectionRowOf(row);
      const sections = builder.sections.bytes;
      sections[s + V2.RETRANS_PACKETS] = 1;
      writeU64(sections, s + V2.RETRANS_BYTES, seglen);
      this.stats.retransmittedSegments++;
    }

    const times = c.times;
    const ownTimes = c.timesOf(d);
    const end = (seq + seglen + ((flags & (TCP_SYN | TCP_FIN)) !== 0 ? 1 : 0)) | 0;
    if (!seqKnown || seqLess(nextSeq, end)) {
      words[own + NEXT_SEQ] = end;
      times[ownTimes + NEXT_SEQ_NS] = t;
    }
    words[own + WINDOW] = window;
    words[own + LAST_ACK] = ack;
    times[ownTimes + LAST_SEGMENT_NS] = t;
    let next = (ownFlags | SideFlag.SEQ_KNOWN) & ~SideFlag.LAST_KEEPALIVE;
    if ((flags & TCP_ACK) !== 0) next |= SideFlag.ACK_SEEN;
    if (keepalive) next |= SideFlag.LAST_KEEPALIVE;
    words[own + FLAGS] = next;
  }

  /** Whether a segment with data, SYN or FIN repeats what its side sent before (see the module comment). */
  #isRetransmission(d: number, seq: number, seglen: number, flags: number, t: number): boolean {
    const c = this.#connections;
    const words = c.words;
    const times = c.times;
    const own = c.wordsOf(d);
    const other = c.wordsOf(d ^ 1);
    const nextSeq = words[own + NEXT_SEQ];
    const seqKnown = (words[own + FLAGS] & SideFlag.SEQ_KNOWN) !== 0;
    // Starting one byte below the highest sequence with more than one byte adds new data after a
    // one-byte zero-window probe: not a repeat.
    const notAdvanced = seqKnown && seqLess(seq, nextSeq) && !(seglen > 1 && seq === ((nextSeq - 1) | 0));
    const otherAcked = (words[other + FLAGS] & SideFlag.ACK_SEEN) !== 0;
    const otherLastAck = words[other + LAST_ACK];
    const sinceOther = t - times[c.timesOf(d ^ 1) + LAST_SEGMENT_NS];
    if (
      notAdvanced &&
      otherAcked &&
      words[other + DUP_ACKS] >= 2 &&
      otherLastAck === seq &&
      sinceOther >= 0 &&
      sinceOther < FAST_RETRANSMISSION_WINDOW_NS
    ) {
      return true;
    }
    const sinceAdvance = t - times[c.timesOf(d) + NEXT_SEQ_NS];
    const reorderWindow = times[c.connectionTimesOf(d >> 1) + INITIAL_RTT_NS] || DEFAULT_REORDER_WINDOW_NS;
    // A segment ending exactly where the highest one did (its SYN or FIN counting one) is that
    // segment again, not one that overtook it.
    const end = (seq + seglen + ((flags & (TCP_SYN | TCP_FIN)) !== 0 ? 1 : 0)) | 0;
    if (notAdvanced && sinceAdvance >= 0 && sinceAdvance < reorderWindow && nextSeq !== end) {
      return false;
    }
    if (seglen > 0 && otherAcked && otherLastAck !== 0 && !seqLess(otherLastAck, (seq + seglen) | 0))
      return true;
    return notAdvanced;
  }
}
