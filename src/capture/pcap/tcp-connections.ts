/**
 * The TCP connections a capture read is following (src/capture/pcap/tcp-health.ts), behind an
 * open-addressing index: a connection is both directions of one TCP 4-tuple (and VLAN ids),
 * stored once with its endpoints in a fixed order, so each packet finds the state of its own side
 * and of the other. A connection's key and state are one 160-byte record of one buffer (times as
 * doubles, the rest as 32-bit words), so a packet touches a few adjacent cache lines, not one per
 * field. Nothing is allocated per packet; the buffer grows by doubling up to `maxConnections`,
 * and a new connection beyond that starts the table over (counted), so memory is bounded by the
 * setting, never by the input.
 */
import { hashWords } from '../../account/key-hash.ts';
import { V2 } from '../../codec/v2-layout.ts';

/** Words of a connection key: endpoint A's address (4), B's (4), both ports, both VLAN ids. */
export const CONNECTION_KEY_WORDS = 10;

/** Bits of a side's FLAGS word. */
export const SideFlag = {
  /** NEXT_SEQ holds the end of the highest sequence the side sent. */
  SEQ_KNOWN: 1,
  /** The side sent a segment with ACK set: LAST_ACK is an acknowledgement. */
  ACK_SEEN: 2,
  /** ISN holds the sequence number of the side's SYN. */
  SYN_SEEN: 4,
  /** The side's SYN (or SYN-ACK) waits for the packet acknowledging it; HANDSHAKE_SENT_NS is its time. */
  HANDSHAKE_PENDING: 8,
  /** The side's handshake packet was a SYN-ACK (the side is the server). */
  HANDSHAKE_SYNACK: 16,
  /** The side's handshake was timed once; a later SYN of it does not start another. */
  HANDSHAKE_DONE: 32,
  /** The side's last segment was a keep-alive. */
  LAST_KEEPALIVE: 64,
  /**
   * The side is the client and its SYN left the observation point (EGRESS): its handshake is
   * timed SYN → SYN-ACK, else SYN-ACK → ACK, as the live datapath does.
   */
  SYN_EGRESS: 128,
  /** The side's handshake time waits in HANDSHAKE_SENT_NS to be written on its next packet. */
  HANDSHAKE_READY: 256,
} as const;

/** A side's 32-bit fields, from {@link TcpConnections.wordsOf}. */
export const SideWord = {
  /** End of the highest sequence sent (seq + length, SYN and FIN count one). */
  NEXT_SEQ: 0,
  /** Acknowledgement number of its last segment. */
  LAST_ACK: 1,
  /** Sequence number of its SYN. */
  ISN: 2,
  /** Duplicate acknowledgements it sent in a row. */
  DUP_ACKS: 3,
  /** Window field of its last segment, unscaled. */
  WINDOW: 4,
  /** {@link SideFlag} bits. */
  FLAGS: 5,
} as const;

/** A side's times (ns since the read's first packet), from {@link TcpConnections.timesOf}. */
export const SideTime = {
  /** When NEXT_SEQ last advanced. */
  NEXT_SEQ_NS: 0,
  /** Its last segment. */
  LAST_SEGMENT_NS: 1,
  /** Its latest SYN or SYN-ACK; once HANDSHAKE_READY, the handshake time to write. */
  HANDSHAKE_SENT_NS: 2,
} as const;

/** A connection's times, from {@link TcpConnections.connectionTimesOf}. */
export const ConnectionTime = {
  /** Its latest SYN without ACK (NaN: none seen). */
  LATEST_SYN_NS: 0,
  /** Its latest SYN to the first segment with ACK and without SYN (0: not known). */
  INITIAL_RTT_NS: 1,
} as const;

const SIDE_WORDS = 6;
const SIDE_TIMES = 3;
/** Record layout: 8 doubles (both sides' times, then the connection's), then the key, then the sides' words. */
const RECORD_BYTES = 160;
const RECORD_DOUBLES = RECORD_BYTES / 8;
const RECORD_WORDS = RECORD_BYTES / 4;
const CONNECTION_TIMES_AT = 2 * SIDE_TIMES;
const KEY_AT = 16;
const SIDE_WORDS_AT = KEY_AT + CONNECTION_KEY_WORDS;
const MIN_CAPACITY = 256;
/** Word indexes, in a v2 row, of the key fields a connection key is made of. */
const SRC_ADDR_WORD = V2.SRC_ADDR / 4;
const DST_ADDR_WORD = V2.DST_ADDR / 4;
/** src_port (low half) and dst_port (high half). */
const PORTS_WORD = V2.SRC_PORT / 4;
/** icmp_type, icmp_code, vlan_outer; the next word starts with vlan_inner. */
const VLAN_OUTER_WORD = (V2.VLAN_OUTER - 2) / 4;

/** A bounded table of TCP connections; see the module comment. Side `s` of connection `c` is `c * 2 + s`. */
export class TcpConnections {
  /** Most connections followed at once. */
  readonly maxConnections: number;
  /** Times the table was full and started over. */
  resets = 0;
  /** The records as 32-bit words (index with {@link wordsOf} + SideWord). */
  words = new Int32Array(0);
  /** The records as doubles (index with {@link timesOf} + SideTime, {@link connectionTimesOf} + ConnectionTime). */
  times = new Float64Array(0);
  /** Per index slot, two words: the key's tag (its hash plus one; 0 = empty) and the connection. */
  #index = new Int32Array(0);
  #mask = 0;
  #capacity = 0;
  #size = 0;
  /** The key being looked up, built from a packet's row. */
  readonly #key = new Int32Array(CONNECTION_KEY_WORDS);

  constructor(maxConnections: number) {
    if (!Number.isInteger(maxConnections) || maxConnections < 1) {
      throw new RangeError(`maxConnections must be a positive integer, got ${maxConnections}`);
    }
    this.maxConnections = maxConnections;
    this.#allocate(Math.min(MIN_CAPACITY, maxConnections));
  }

  /** Connections followed now. */
  get size(): number {
    return this.#size;
  }

  /** Bytes the table occupies. */
  get heapBytes(): number {
    return this.words.byteLength + this.#index.byteLength;
  }

  /** Where side `s`'s 32-bit fields start in `words`. */
  wordsOf(s: number): number {
    return (s >> 1) * RECORD_WORDS + SIDE_WORDS_AT + (s & 1) * SIDE_WORDS;
  }

  /** Where side `s`'s times start in `times`. */
  timesOf(s: number): number {
    return (s >> 1) * RECORD_DOUBLES + (s & 1) * SIDE_TIMES;
  }

  /** Where connection `c`'s own times start in `times`. */
  connectionTimesOf(c: number): number {
    return c * RECORD_DOUBLES + CONNECTION_TIMES_AT;
  }

  /**
   * The side of the TCP packet whose key is in the row starting at word `r` of `rowWords` (a v2
   * row seen as 32-bit words): its connection times two, plus 1 when the packet goes from
   * endpoint B to A. A connection not followed yet is added with every side flag clear.
   */
  sideOf(rowWords: Int32Array<ArrayBufferLike>, r: number): number {
    const fromB = this.#keyOf(rowWords, r);
    const tag = hashWords(this.#key, 0, CONNECTION_KEY_WORDS) + 1;
    const index = this.#index;
    const mask = this.#mask;
    let slot = tag & mask;
    for (;;) {
      const st = index[slot * 2];
      if (st === 0) break;
      if (st === tag && this.#sameKey(index[slot * 2 + 1])) return index[slot * 2 + 1] * 2 + fromB;
      slot = (slot + 1) & mask;
    }
    return this.#add(tag, slot) * 2 + fromB;
  }

  /** Forgets the state of connection `c`'s two sides, as if it were new (its ports were reused). */
  restart(c: number): void {
    for (let s = c * 2; s < c * 2 + 2; s++) {
      const w = this.wordsOf(s);
      this.words[w + SideWord.FLAGS] = 0;
      this.words[w + SideWord.DUP_ACKS] = 0;
    }
    const t = this.connectionTimesOf(c);
    this.times[t + ConnectionTime.LATEST_SYN_NS] = Number.NaN;
    this.times[t + ConnectionTime.INITIAL_RTT_NS] = 0;
  }

  /** Writes the packet's connection key into `#key`; returns 1 when its source is endpoint B. */
  #keyOf(w: Int32Array<ArrayBufferLike>, r: number): number {
    const src = r + SRC_ADDR_WORD;
    const dst = r + DST_ADDR_WORD;
    const ports = w[r + PORTS_WORD];
    // Endpoint A is the lower (address words, then port), in any fixed order: either direction's
    // packets build the same key.
    let order = 0;
    for (let i = 0; i < 4 && order === 0; i++) order = (w[src + i] >>> 0) - (w[dst + i] >>> 0);
    if (order === 0) order = (ports & 0xffff) - (ports >>> 16);
    const fromB = order > 0 ? 1 : 0;
    const a = fromB === 0 ? src : dst;
    const b = fromB === 0 ? dst : src;
    const key = this.#key;
    key[0] = w[a];
    key[1] = w[a + 1];
    key[2] = w[a + 2];
    key[3] = w[a + 3];
    key[4] = w[b];
    key[5] = w[b + 1];
    key[6] = w[b + 2];
    key[7] = w[b + 3];
    key[8] = fromB === 0 ? ports : (ports >>> 16) | (ports << 16);
    // vlan_outer is the high half of the word at byte 56, vlan_inner the low half of the next.
    key[9] = (w[r + VLAN_OUTER_WORD] >>> 16) | (w[r + VLAN_OUTER_WORD + 1] << 16);
    return fromB;
  }

  #sameKey(c: number): boolean {
    const words = this.words;
    const key = this.#key;
    const at = c * RECORD_WORDS + KEY_AT;
    for (let w = 0; w < CONNECTION_KEY_WORDS; w++) if (words[at + w] !== key[w]) return false;
    return true;
  }

  /** Adds the key in `#key` (its empty index slot is `slot`) and returns its connection number. */
  #add(tag: number, slot: number): number {
    let at = slot;
    if (this.#size >= this.#capacity) {
      if (this.#capacity < this.maxConnections) {
        this.#allocate(Math.min(this.#capacity * 2, this.maxConnections));
      } else {
        // Full: start over rather than grow past the bound. Connections still open are followed
        // again from their next packet, without what came before.
        this.resets++;
        this.#index.fill(0);
        this.#size = 0;
      }
      at = tag & this.#mask;
      while (this.#index[at * 2] !== 0) at = (at + 1) & this.#mask;
    }
    const c = this.#size++;
    this.#index[at * 2] = tag;
    this.#index[at * 2 + 1] = c;
    this.words.set(this.#key, c * RECORD_WORDS + KEY_AT);
    this.restart(c);
    return c;
  }

  /** Grows the records to `capacity` connections, keeping those followed, and rebuilds the index. */
  #allocate(capacity: number): void {
    const buffer = new ArrayBuffer(capacity * RECORD_BYTES);
    new Uint8Array(buffer).set(new Uint8Array(this.words.buffer, 0, this.#size * RECORD_BYTES));
    this.words = new Int32Array(buffer);
    this.times = new Float64Array(buffer);
    this.#capacity = capacity;
    // The index is at most half full: twice the capacity, rounded up to a power of two.
    let slots = 16;
    while (slots < capacity * 2) slots *= 2;
    this.#mask = slots - 1;
    const index = new Int32Array(slots * 2);
    for (let c = 0; c < this.#size; c++) {
      const tag = hashWords(this.words, c * RECORD_WORDS + KEY_AT, CONNECTION_KEY_WORDS) + 1;
      let at = tag & this.#mask;
      while (index[at * 2] !== 0) at = (at + 1) & this.#mask;
      index[at * 2] = tag;
      index[at * 2 + 1] = c;
    }
    this.#index = index;
  }
}
