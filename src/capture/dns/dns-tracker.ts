/**
 * DNS tracking of a capture (`flowtap read` with ENABLE_DNS_TRACKING), on the capture's own clock:
 * every counted packet to or from a DNS_TRACKING_PORT over UDP or TCP is parsed
 * (dns-parser.ts), queries wait in a bounded map for their response, and what each flow's
 * messages said goes into the DNS section of the packet's section row (src/codec/event-sections.ts:
 * only DNS packets have one), which the accounter keeps by flow beside its cache and puts back on
 * the flow's record (src/account/dns-sections.ts). This is the
 * specification of the kernel's tracker (bpf/flow_record.h, struct flow_dns, says how the kernel
 * fills the same section).
 *
 * - A query adds to its flow's `queries` and waits under (id, addresses, ports, protocol); a
 *   retransmission with the same id keeps the first one's time.
 * - A response takes its query out of the map: its flow gets `answers` and the latency (response
 *   time - query time). One that matches no query sets errno ENOENT, as netobserv does.
 * - A query that waits longer than the query timeout (5 s of capture time), or is the oldest when
 *   the map is full, or still waits when the capture ends, is unanswered: the tracker appends a row
 *   of its flow with 0 packets carrying `unanswered` 1, so the count lands on that flow's record
 *   (the next one when the query's own record has left accounting already) and no entry stays.
 * - A malformed message adds to `malformed` and sets the errno; a message cut by the capture's
 *   snap length is counted as snapped, not malformed.
 * - Over TCP a message starts where the previous one ended, learnt from the SYN or from the
 *   length prefix of the message before: segments in between are continuations, not messages.
 *   Without a SYN (a capture begun mid-connection) a segment is a message only if it parses.
 *
 * The hook in the packet path is one call per counted packet; packets that are not DNS cost a
 * time comparison and a port lookup. The pending queries (pending-queries.ts) and the TCP streams
 * are JavaScript Maps keyed by strings (V8 seeds their hashes per process), bounded by
 * `pendingMax`.
 */

import type { EventBatchBuilder } from '../../codec/event-batch.ts';
import { mergeFlowDns } from '../../codec/merge-rule.ts';
import {
  DNS_QUERY_KEY,
  DNS_QUERY_KEY_BYTES,
  DnsErrno,
  DnsFlag,
  DnsLimit,
  V2,
  V2_DNS_BYTES,
  V2_DNS_WORD,
  V2_DNS_WORDS,
  V2_KEY_WORDS,
} from '../../codec/v2-layout.ts';
import { IpProto, TcpFlag } from '../../model/names.ts';
import { TWO_POW_32 } from '../../model/u64.ts';
import { lastIpPacketEnd, lastTransportOffset } from '../packet/frame-parser.ts';
import { writeUnixNs } from '../pcap/unix-time.ts';
import {
  DNS_MALFORMED_REASONS,
  DNS_OK,
  DnsMessage,
  dnsErrnoOf,
  isTruncation,
  parseDnsPayload,
  TCP_LENGTH_PREFIX_BYTES,
} from './dns-parser.ts';
import { PendingQueries } from './pending-queries.ts';

/** How long a query waits for its response, on the capture's clock, before it is unanswered. */
export const DNS_QUERY_TIMEOUT_NS = 5_000_000_000;
/** Messages one TCP segment may hold that are parsed (pipelined queries); the rest are skipped. */
const MAX_MESSAGES_PER_SEGMENT = 4;
const NS_PER_S = 1_000_000_000;
const UDP_HEADER_BYTES = 8;
const TCP_FLAG_FIN = TcpFlag.FIN;
const TCP_FLAG_SYN = TcpFlag.SYN;
const TCP_FLAG_RST = TcpFlag.RST;

/** Settings of a {@link DnsTracker}. */
export interface DnsTrackerOptions {
  /** DNS_TRACKING_PORT: a packet to or from one of these is DNS. */
  readonly ports: readonly number[];
  /** Queries waiting at most (default FLOWTAP_DNS_PENDING_MAX); the oldest beyond is unanswered. */
  readonly pendingMax?: number;
  /** How long a query waits (default {@link DNS_QUERY_TIMEOUT_NS}). */
  readonly queryTimeoutNs?: number;
}

/** Counts of DNS tracking, for the read summary and metrics. */
export class DnsStats {
  /** DNS messages parsed. */
  messages = 0;
  queries = 0;
  responses = 0;
  /** Responses that matched a waiting query. */
  answered = 0;
  /** Responses that matched none (errno ENOENT). */
  unmatched = 0;
  /** Queries that waited past the timeout, or until the capture ended. */
  timedOut = 0;
  /** Queries pushed out of a full pending map (also unanswered). */
  evicted = 0;
  /** Malformed messages by reason (index: DnsMalformed; 0 unused). */
  readonly malformed = new Float64Array(DNS_MALFORMED_REASONS.length);
  /** Messages the capture's snap length cut: neither parsed nor malformed. */
  snapped = 0;
  /** TCP segments in the middle of a message (not messages). */
  tcpContinuations = 0;
  /** TCP segments of a connection begun before the capture that did not parse as a message start. */
  tcpUnsynchronized = 0;
  /** Queries waiting now, and the most that waited at once. */
  pending = 0;
  pendingPeak = 0;

  /** Malformed messages, all reasons. */
  get malformedTotal(): number {
    let total = 0;
    for (const n of this.malformed) total += n;
    return total;
  }
}

/** The tracker of one capture; see the module comment. */
export class DnsTracker {
  readonly stats = new DnsStats();
  readonly #pendingMax: number;
  readonly #timeoutNs: number;
  /** 1 at each tracked port. */
  readonly #ports = new Uint8Array(65_536);
  readonly #pending: PendingQueries;
  /** Next TCP sequence number a message starts at, by connection direction. */
  readonly #tcpNext = new Map<string, number>();
  readonly #message = new DnsMessage();
  /** Scratch: a query key (struct flow_dns_query_key), a section, a flow key. */
  readonly #keyBytes = Buffer.alloc(DNS_QUERY_KEY_BYTES);
  readonly #sectionBytes = Buffer.alloc(V2_DNS_BYTES);
  readonly #section = new Int32Array(this.#sectionBytes.buffer, this.#sectionBytes.byteOffset, V2_DNS_WORDS);
  readonly #flowKey = new Int32Array(V2_KEY_WORDS);
  /** Words of the builder's current buffer, and that buffer. */
  #rowWords: Int32Array = new Int32Array(0);
  #rowBuffer: Buffer | undefined;
  /** When the oldest waiting query times out (seconds, nanos); +Infinity when none waits. */
  #expirySeconds = Number.POSITIVE_INFINITY;
  #expiryNanos = 0;
  /** The latest packet time seen: the capture's "now" when it ends. */
  #nowSeconds = 0;
  #nowNanos = 0;

  constructor(options: DnsTrackerOptions) {
    this.#pendingMax = options.pendingMax ?? DnsLimit.PENDING_MAX;
    this.#timeoutNs = options.queryTimeoutNs ?? DNS_QUERY_TIMEOUT_NS;
    if (!Number.isInteger(this.#pendingMax) || this.#pendingMax < 1)
      throw new RangeError(`pendingMax must be a positive integer, got ${this.#pendingMax}`);
    this.#pending = new PendingQueries(this.#pendingMax);
    for (const port of options.ports) this.#ports[port] = 1;
  }

  /** Queries waiting for their response now. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /**
   * One counted packet: its event at byte `row` of `builder.bytes` holds its key, the frame it
   * came from is `data` up to `end`, and `cut` says the capture kept less than the wire had.
   * Unanswered queries whose time is up are appended to `builder` as events first.
   */
  packet(
    data: Uint8Array,
    end: number,
    cut: boolean,
    builder: EventBatchBuilder,
    row: number,
    seconds: number,
    nanos: number,
  ): void {
    if (seconds > this.#nowSeconds || (seconds === this.#nowSeconds && nanos > this.#nowNanos)) {
      this.#nowSeconds = seconds;
      this.#nowNanos = nanos;
    }
    if (seconds > this.#expirySeconds || (seconds === this.#expirySeconds && nanos >= this.#expiryNanos)) {
      this.#expire(builder, seconds, nanos, false);
    }
    const out = builder.bytes;
    const proto = out[row + V2.TRANSPORT_PROTOCOL];
    if (proto !== IpProto.UDP && proto !== IpProto.TCP) return;
    const srcPort = out[row + V2.SRC_PORT] | (out[row + V2.SRC_PORT + 1] << 8);
    const dstPort = out[row + V2.DST_PORT] | (out[row + V2.DST_PORT + 1] << 8);
    if (this.#ports[srcPort] === 0 && this.#ports[dstPort] === 0) return;
    const l4 = lastTransportOffset();
    if (l4 < 0) return;
    const ipEnd = lastIpPacketEnd();
    const packetEnd = ipEnd >= 0 ? Math.min(end, ipEnd) : end;
    if (proto === IpProto.UDP) {
      const udpLength = (data[l4 + 4] << 8) | data[l4 + 5];
      const status = parseDnsPayload(
        data,
        l4 + UDP_HEADER_BYTES,
        packetEnd,
        Math.max(udpLength - UDP_HEADER_BYTES, 0),
        false,
        this.#message,
      );
      this.#record(status, cut, builder, row, seconds, nanos);
    } else {
      this.#tcpSegment(data, l4, packetEnd, cut, builder, row, seconds, nanos);
    }
  }

  /** The capture ended: every query still waiting is unanswered (events appended to `builder`). */
  finish(builder: EventBatchBuilder): void {
    this.#expire(builder, this.#nowSeconds, this.#nowNanos, true);
    this.#tcpNext.clear();
  }

  #tcpSegment(
    data: Uint8Array,
    l4: number,
    end: number,
    cut: boolean,
    builder: EventBatchBuilder,
    row: number,
    seconds: number,
    nanos: number,
  ): void {
    const flags = data[l4 + 13];
    const seq = ((data[l4 + 4] << 24) | (data[l4 + 5] << 16) | (data[l4 + 6] << 8) | data[l4 + 7]) >>> 0;
    const start = l4 + (data[l4 + 12] >>> 4) * 4;
    const stream = this.#streamKey(builder.bytes, row);
    let next = this.#tcpNext.get(stream);
    if ((flags & (TCP_FLAG_FIN | TCP_FLAG_RST)) !== 0) this.#tcpNext.delete(stream);
    if ((flags & TCP_FLAG_SYN) !== 0) {
      this.#remember(stream, (seq + 1) % TWO_POW_32);
      return;
    }
    if (start >= end) return; // no payload: an ACK
    if (next !== undefined && seq !== next) {
      this.stats.tcpContinuations++;
      return;
    }
    let at = start;
    let messageSeq = seq;
    for (let m = 0; m < MAX_MESSAGES_PER_SEGMENT && at < end; m++) {
      const status = parseDnsPayload(data, at, end, end - at, true, this.#message);
      if (status !== DNS_OK && next === undefined) {
        this.stats.tcpUnsynchronized++;
        return;
      }
      this.#record(status, cut, builder, row, seconds, nanos);
      if (end - at < TCP_LENGTH_PREFIX_BYTES) return;
      const span = TCP_LENGTH_PREFIX_BYTES + ((data[at] << 8) | data[at + 1]);
      messageSeq = (messageSeq + span) % TWO_POW_32;
      next = messageSeq;
      if ((flags & (TCP_FLAG_FIN | TCP_FLAG_RST)) === 0) this.#remember(stream, next);
      at += span;
    }
  }

  /** Keeps the next message start of a TCP stream, forgetting the oldest stream when full. */
  #remember(stream: string, next: number): void {
    if (!this.#tcpNext.has(stream) && this.#tcpNext.size >= this.#pendingMax) {
      const oldest = this.#tcpNext.keys().next().value as string;
      this.#tcpNext.delete(oldest);
    }
    this.#tcpNext.set(stream, next);
  }

  /** Records the message just parsed (or its damage) on the flow of the row at `row`. */
  #record(
    status: number,
    cut: boolean,
    builder: EventBatchBuilder,
    row: number,
    seconds: number,
    nanos: number,
  ): void {
    const stats = this.stats;
    const message = this.#message;
    const section = this.#section;
    section.fill(0);
    writeUnixNs(this.#sectionBytes, V2.DNS_LATEST_NS - V2.DNS_LATENCY_NS, seconds, nanos);
    if (status !== DNS_OK) {
      if (cut && isTruncation(status)) {
        stats.snapped++;
        return;
      }
      stats.malformed[status]++;
      section[V2_DNS_WORD.MALFORMED] = 1;
      section[V2_DNS_WORD.NAME_LEN_ERRNO_FLAGS] = dnsErrnoOf(status) << 8;
      this.#mergeInto(builder, row);
      return;
    }
    stats.messages++;
    this.#writeMessage(section);
    const out = builder.bytes;
    if (!message.isResponse) {
      stats.queries++;
      section[V2_DNS_WORD.QUERIES] = 1;
      this.#mergeInto(builder, row);
      this.#wait(builder, out, row, seconds, nanos);
      return;
    }
    stats.responses++;
    const key = this.#queryKey(out, row, true);
    const slot = this.#pending.slotOf(key);
    if (slot === undefined) {
      stats.unmatched++;
      section[V2_DNS_WORD.NAME_LEN_ERRNO_FLAGS] |= DnsErrno.ENOENT << 8;
    } else {
      const pending = this.#pending;
      // Exact in doubles for any latency below 104 days.
      const latency = (seconds - pending.seconds[slot]) * NS_PER_S + (nanos - pending.nanos[slot]);
      pending.delete(key);
      this.#pendingChanged();
      stats.answered++;
      section[V2_DNS_WORD.ANSWERS] = 1;
      const ns = Math.max(latency, 0);
      section[V2_DNS_WORD.LATENCY_NS] = ns % TWO_POW_32;
      section[V2_DNS_WORD.LATENCY_NS + 1] = Math.floor(ns / TWO_POW_32);
      section[V2_DNS_WORD.NAME_LEN_ERRNO_FLAGS] |= DnsFlag.LATENCY << 16;
    }
    this.#mergeInto(builder, row);
  }

  /** Header, name and their flags of the message just parsed, into `section`. */
  #writeMessage(section: Int32Array): void {
    const message = this.#message;
    section[V2_DNS_WORD.ID_FLAGS] = message.id | (message.flags << 16);
    let flags = DnsFlag.HEADER;
    if (message.hasName) {
      flags |= DnsFlag.NAME;
      if (message.nameTruncated) flags |= DnsFlag.NAME_TRUNCATED;
      this.#sectionBytes.set(message.name.subarray(0, message.nameLength), V2.DNS_NAME - V2.DNS_LATENCY_NS);
    }
    section[V2_DNS_WORD.NAME_LEN_ERRNO_FLAGS] = (message.hasName ? message.nameLength : 0) | (flags << 16);
  }

  /** Puts the query just recorded in the pending map, unless its id already waits there. */
  #wait(builder: EventBatchBuilder, out: Buffer, row: number, seconds: number, nanos: number): void {
    const key = this.#queryKey(out, row, false);
    const pending = this.#pending;
    if (pending.slotOf(key) !== undefined) return; // a retransmission: the first query's time stands
    const oldest = pending.size >= this.#pendingMax ? pending.oldest() : undefined;
    if (oldest !== undefined) {
      pending.delete(oldest[0]);
      this.stats.evicted++;
      this.#unanswered(builder, oldest[1], seconds, nanos);
    }
    const rows = builder.bytes; // the row appended above may have replaced the buffer
    const section = this.#section;
    section[V2_DNS_WORD.QUERIES] = 0; // the query's own section waits without counts
    pending.add(
      key,
      seconds,
      nanos,
      this.#keyOf(rows, row),
      0,
      rows.readUInt32LE(row + V2.IF_INDEX),
      rows[row + V2.DIRECTION],
      section,
    );
    this.#pendingChanged();
  }

  /**
   * Every query that waited `timeoutNs` by `seconds`+`nanos` (all of them when `all`) is
   * unanswered.
   */
  #expire(builder: EventBatchBuilder, seconds: number, nanos: number, all: boolean): void {
    const pending = this.#pending;
    for (let oldest = pending.oldest(); oldest !== undefined; oldest = pending.oldest()) {
      const [key, slot] = oldest;
      const waited = (seconds - pending.seconds[slot]) * NS_PER_S + (nanos - pending.nanos[slot]);
      if (!all && waited < this.#timeoutNs) break;
      pending.delete(key);
      this.stats.timedOut++;
      this.#unanswered(builder, slot, seconds, nanos);
    }
    this.#pendingChanged();
  }

  /**
   * Appends an event of the flow of the query in `slot` (just taken out of the pending map) with 0
   * packets, at the time given, carrying its section with `unanswered` 1 in its section row.
   */
  #unanswered(builder: EventBatchBuilder, slot: number, seconds: number, nanos: number): void {
    const pending = this.#pending;
    const row = builder.appendRow();
    const out = builder.bytes;
    const words = this.#rowWordsOf(builder);
    words.set(pending.flowKeys.subarray(slot * V2_KEY_WORDS, (slot + 1) * V2_KEY_WORDS), row / 4);
    out.writeUInt32LE(pending.ifIndex[slot], row + V2.CROSSED_IF_INDEX);
    out[row + V2.CROSSED_DIRECTION] = pending.direction[slot];
    out[row + V2.CROSSED_COUNT] = 1;
    writeUnixNs(out, row + V2.FIRST_SEEN_NS, seconds, nanos);
    out.copyWithin(row + V2.LAST_SEEN_NS, row + V2.FIRST_SEEN_NS, row + V2.FIRST_SEEN_NS + 8);
    const d = (builder.sectionRowOf(row) + V2.DNS_LATENCY_NS) / 4;
    const sections = builder.sections.words;
    sections.set(pending.sections.subarray(slot * V2_DNS_WORDS, (slot + 1) * V2_DNS_WORDS), d);
    sections[d + V2_DNS_WORD.UNANSWERED] = 1;
  }

  /** Updates the pending counts and when the oldest waiting query times out. */
  #pendingChanged(): void {
    const stats = this.stats;
    const pending = this.#pending;
    stats.pending = pending.size;
    if (stats.pending > stats.pendingPeak) stats.pendingPeak = stats.pending;
    const oldest = pending.oldest();
    if (oldest === undefined) {
      this.#expirySeconds = Number.POSITIVE_INFINITY;
      return;
    }
    const slot = oldest[1];
    const at = pending.nanos[slot] + (this.#timeoutNs % NS_PER_S);
    this.#expirySeconds =
      pending.seconds[slot] + Math.floor(this.#timeoutNs / NS_PER_S) + Math.floor(at / NS_PER_S);
    this.#expiryNanos = at % NS_PER_S;
  }

  /** Merges the scratch section into the DNS section of the section row of the event at `row`. */
  #mergeInto(builder: EventBatchBuilder, row: number): void {
    const s = builder.sectionRowOf(row);
    mergeFlowDns(builder.sections.words, (s + V2.DNS_LATENCY_NS) / 4, this.#section, 0);
  }

  /** The builder's events as words (its buffers start 4-byte aligned: Buffer.alloc). */
  #rowWordsOf(builder: EventBatchBuilder): Int32Array {
    const bytes = builder.bytes;
    if (bytes !== this.#rowBuffer) {
      this.#rowBuffer = bytes;
      this.#rowWords = new Int32Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 2);
    }
    return this.#rowWords;
  }

  /** The 16-word key of the row at `row` (a scratch copy: rows need not be 4-byte aligned). */
  #keyOf(out: Buffer, row: number): Int32Array {
    const key = this.#flowKey;
    for (let w = 0; w < V2_KEY_WORDS; w++) key[w] = out.readInt32LE(row + 4 * w);
    return key;
  }

  /**
   * The pending-map key (struct flow_dns_query_key) of the message just parsed on the row at
   * `row`: the query's source first, so a response looks its query up `reversed`.
   */
  #queryKey(out: Buffer, row: number, reversed: boolean): string {
    const k = this.#keyBytes;
    const [src, dst, srcPort, dstPort] = reversed
      ? [V2.DST_ADDR, V2.SRC_ADDR, V2.DST_PORT, V2.SRC_PORT]
      : [V2.SRC_ADDR, V2.DST_ADDR, V2.SRC_PORT, V2.DST_PORT];
    out.copy(k, DNS_QUERY_KEY.SRC_ADDR, row + src, row + src + 16);
    out.copy(k, DNS_QUERY_KEY.DST_ADDR, row + dst, row + dst + 16);
    k.writeUInt16LE(out.readUInt16LE(row + srcPort), DNS_QUERY_KEY.SRC_PORT);
    k.writeUInt16LE(out.readUInt16LE(row + dstPort), DNS_QUERY_KEY.DST_PORT);
    k.writeUInt16LE(this.#message.id, DNS_QUERY_KEY.DNS_ID);
    k[DNS_QUERY_KEY.TRANSPORT_PROTOCOL] = out[row + V2.TRANSPORT_PROTOCOL];
    return k.toString('latin1');
  }

  /** A TCP connection direction: the query-key layout with id 0. */
  #streamKey(out: Buffer, row: number): string {
    const k = this.#keyBytes;
    out.copy(k, DNS_QUERY_KEY.SRC_ADDR, row + V2.SRC_ADDR, row + V2.SRC_ADDR + 16);
    out.copy(k, DNS_QUERY_KEY.DST_ADDR, row + V2.DST_ADDR, row + V2.DST_ADDR + 16);
    k.writeUInt16LE(out.readUInt16LE(row + V2.SRC_PORT), DNS_QUERY_KEY.SRC_PORT);
    k.writeUInt16LE(out.readUInt16LE(row + V2.DST_PORT), DNS_QUERY_KEY.DST_PORT);
    k.writeUInt16LE(0, DNS_QUERY_KEY.DNS_ID);
    k[DNS_QUERY_KEY.TRANSPORT_PROTOCOL] = IpProto.TCP;
    return k.toString('latin1');
  }
}
