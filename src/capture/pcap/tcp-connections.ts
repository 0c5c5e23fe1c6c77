/**
 * The TCP connections a capture read is following (src/capture/pcap/tcp-health.ts), in typed
 * arrays behind an open-addressing index: a connection is both directions of one TCP 4-tuple
 * (and VLAN ids), stored once with its endpoints in a fixed order, so each packet finds the state
 * of its own side and of the other. Nothing is allocated per packet; the arrays grow by doubling
 * up to `maxConnections`, and a new connection beyond that starts the table over (counted), so
 * memory is bounded by the setting, never by the input.
 */
import { hashWords } from '../../account/key-hash.ts';
import { V2 } from '../../codec/v2-layout.ts';

/** Words of a connection key: endpoint A's address (4), B's (4), both ports, both VLAN ids. */
export const CONNECTION_KEY_WORDS = 10;

/** Bits of a side's `flags`. */
export const SideFlag = {
  /** `nextSeq` holds the end of the highest sequence the side sent. */
  SEQ_KNOWN: 1,
  /** The side sent a segment with ACK set: `lastAck` is an acknowledgement. */
  ACK_SEEN: 2,
  /** `isn` holds the sequence number of the side's SYN. */
  SYN_SEEN: 4,
  /** The side's SYN (or SYN-ACK) waits for the packet acknowledging it; `handshakeSentNs` is its time. */
  HANDSHAKE_PENDING: 8,
  /** The side's handshake packet was a SYN-ACK (the side is the server). */
  HANDSHAKE_SYNACK: 16,
  /** The side's handshake was timed once; a later SYN of it does not start another. */
  HANDSHAKE_DONE: 32,
  /** The side's last segment was a keep-alive. */
  LAST_KEEPALIVE: 64,
} as const;

const MIN_CAPACITY = 256;

/** A bounded table of TCP connections; see the module comment. Side `s` of connection `c` is `c * 2 + s`. */
export class TcpConnections {
  /** Most connections followed at once. */
  readonly maxConnections: number;
  /** Times the table was full and started over. */
  resets = 0;
  /** Per side: end of the highest sequence sent (seq + length, SYN and FIN count one). */
  nextSeq = new Int32Array(0);
  /** Per side: capture time (ns since the read's first packet) `nextSeq` last advanced at. */
  nextSeqNs = new Float64Array(0);
  /** Per side: acknowledgement number of its last segment. */
  lastAck = new Int32Array(0);
  /** Per side: time of its last segment. */
  lastSegmentNs = new Float64Array(0);
  /** Per side: duplicate acknowledgements it sent in a row. */
  dupAcks = new Int32Array(0);
  /** Per side: window field of its last segment, unscaled. */
  window = new Int32Array(0);
  /** Per side: sequence number of its SYN. */
  isn = new Int32Array(0);
  /** Per side: time of its latest SYN or SYN-ACK. */
  handshakeSentNs = new Float64Array(0);
  /** Per side: {@link SideFlag} bits. */
  flags = new Uint8Array(0);
  /** Per connection: time of its latest SYN without ACK (NaN: none seen). */
  latestSynNs = new Float64Array(0);
  /** Per connection: its latest SYN to the first segment with ACK and without SYN (0: not known). */
  initialRttNs = new Float64Array(0);
  #keys = new Int32Array(0);
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

  /** Bytes of typed arrays the table holds. */
  get heapBytes(): number {
    const arrays = [
      this.nextSeq,
      this.nextSeqNs,
      this.lastAck,
      this.lastSegmentNs,
      this.dupAcks,
      this.window,
      this.isn,
      this.handshakeSentNs,
      this.flags,
      this.latestSynNs,
      this.initialRttNs,
      this.#keys,
      this.#index,
    ];
    return arrays.reduce((sum, array) => sum + array.byteLength, 0);
  }

  /**
   * The side of the TCP packet whose key is in the row at `row` of `out`: its connection times two,
   * plus 1 when the packet goes from endpoint B to A. A connection not followed yet is added with
   * every side flag clear.
   */
  sideOf(out: Uint8Array, row: number): number {
    const fromB = this.#keyOf(out, row);
    const key = this.#key;
    const tag = hashWords(key, 0, CONNECTION_KEY_WORDS) + 1;
    let slot = tag & this.#mask;
    const index = this.#index;
    for (;;) {
      const st = index[slot * 2];
      if (st === 0) break;
      if (st === tag && this.#sameKey(index[slot * 2 + 1])) return index[slot * 2 + 1] * 2 + fromB;
      slot = (slot + 1) & this.#mask;
    }
    return this.#add(tag, slot) * 2 + fromB;
  }

  /** Forgets the state of connection `c`'s two sides, as if it were new (its ports were reused). */
  restart(c: number): void {
    for (let s = c * 2; s < c * 2 + 2; s++) {
      this.flags[s] = 0;
      this.dupAcks[s] = 0;
    }
    this.latestSynNs[c] = Number.NaN;
    this.initialRttNs[c] = 0;
  }

  /** Writes the packet's connection key into `#key`; returns 1 when its source is endpoint B. */
  #keyOf(out: Uint8Array, row: number): number {
    const src = row + V2.SRC_ADDR;
    const dst = row + V2.DST_ADDR;
    const srcPort = out[row + V2.SRC_PORT] | (out[row + V2.SRC_PORT + 1] << 8);
    const dstPort = out[row + V2.DST_PORT] | (out[row + V2.DST_PORT + 1] << 8);
    // Endpoint A is the lower (address, port): either direction's packets build the same key.
    let order = 0;
    for (let i = 0; i < 16 && order === 0; i++) order = out[src + i] - out[dst + i];
    if (order === 0) order = srcPort - dstPort;
    const fromB = order > 0 ? 1 : 0;
    const a = fromB === 0 ? src : dst;
    const b = fromB === 0 ? dst : src;
    const key = this.#key;
    for (let w = 0; w < 4; w++) {
      const i = w * 4;
      key[w] = out[a + i] | (out[a + i + 1] << 8) | (out[a + i + 2] << 16) | (out[a + i + 3] << 24);
      key[4 + w] = out[b + i] | (out[b + i + 1] << 8) | (out[b + i + 2] << 16) | (out[b + i + 3] << 24);
    }
    key[8] = fromB === 0 ? srcPort | (dstPort << 16) : dstPort | (srcPort << 16);
    key[9] =
      out[row + V2.VLAN_OUTER] |
      (out[row + V2.VLAN_OUTER + 1] << 8) |
      (out[row + V2.VLAN_INNER] << 16) |
      (out[row + V2.VLAN_INNER + 1] << 24);
    return fromB;
  }

  #sameKey(c: number): boolean {
    const keys = this.#keys;
    const key = this.#key;
    const at = c * CONNECTION_KEY_WORDS;
    for (let w = 0; w < CONNECTION_KEY_WORDS; w++) if (keys[at + w] !== key[w]) return false;
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
    this.#keys.set(this.#key, c * CONNECTION_KEY_WORDS);
    this.restart(c);
    return c;
  }

  /** Grows every array to `capacity` connections, keeping those followed, and rebuilds the index. */
  #allocate(capacity: number): void {
    const grow = <T extends Int32Array | Float64Array | Uint8Array>(old: T, perConnection: number): T => {
      const next = new (old.constructor as new (n: number) => T)(capacity * perConnection);
      next.set(old);
      return next;
    };
    this.nextSeq = grow(this.nextSeq, 2);
    this.nextSeqNs = grow(this.nextSeqNs, 2);
    this.lastAck = grow(this.lastAck, 2);
    this.lastSegmentNs = grow(this.lastSegmentNs, 2);
    this.dupAcks = grow(this.dupAcks, 2);
    this.window = grow(this.window, 2);
    this.isn = grow(this.isn, 2);
    this.handshakeSentNs = grow(this.handshakeSentNs, 2);
    this.flags = grow(this.flags, 2);
    this.latestSynNs = grow(this.latestSynNs, 1);
    this.initialRttNs = grow(this.initialRttNs, 1);
    this.#keys = grow(this.#keys, CONNECTION_KEY_WORDS);
    this.#capacity = capacity;
    // The index is at most half full: twice the capacity, rounded up to a power of two.
    let slots = 16;
    while (slots < capacity * 2) slots *= 2;
    this.#mask = slots - 1;
    const index = new Int32Array(slots * 2);
    for (let c = 0; c < this.#size; c++) {
      const tag = hashWords(this.#keys, c * CONNECTION_KEY_WORDS, CONNECTION_KEY_WORDS) + 1;
      let at = tag & this.#mask;
      while (index[at * 2] !== 0) at = (at + 1) & this.#mask;
      index[at * 2] = tag;
      index[at * 2 + 1] = c;
    }
    this.#index = index;
  }
}
