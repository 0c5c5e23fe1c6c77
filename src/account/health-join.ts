/**
 * Joining TCP health and DNS into flows after accounting (docs/flow-key.md, "Health"). The live
 * capture hands out, after each drain's flows, a HealthBatch of the health and a DnsBatch of the
 * DNS collected in the same period (the kernel keeps both in maps of their own, keyed as the flow
 * map is); the pipeline gives them to `add()` instead of the Accounter. A row's health section
 * merges by mergeFlowHealth, its DNS section by mergeFlowDns; a row of one kind holds the other
 * section zero, which merges as nothing. At each eviction `join()` writes every
 * health row into the evicted flow it belongs to, by the merge rule (mergeFlowHealth), and appends
 * each health row no evicted flow claimed as a record of its own (zero packets), so no measured
 * drop or retransmission is lost. Health rows of one key from several drains merge first.
 *
 * Which flow a health row belongs to: the one whose key equals the health row's once the MACs of
 * an IP flow are set to zero (a socket or a dropped packet knows no MACs), and with
 * DEDUPER=firstCome also its interface and direction (the kernel keys health as it looks flows
 * up: without them). A health row is joined into one flow only: the first evicted with its key.
 */
import { mergeFlowDns, mergeFlowHealth } from '../codec/merge-rule.ts';
import { RecordBatch } from '../codec/record-batch.ts';
import { int32Words, rowWords } from '../codec/row-words.ts';
import { V2, V2_KEY_WORDS, V2_RECORD_BYTES, V2_ROW_WORDS } from '../codec/v2-layout.ts';
import { hashKey } from './key-hash.ts';

const ETH_P_IP = 0x0800;
const ETH_P_IPV6 = 0x86dd;
const HEALTH_AT = V2.RTT_MIN_NS >>> 2;
const DNS_AT = V2.DNS_LATENCY_NS >>> 2;
/** Key words holding MAC bytes 4..15 (src_mac, dst_mac). */
const W_MACS = [V2.SRC_MAC >>> 2, (V2.SRC_MAC >>> 2) + 1, (V2.SRC_MAC >>> 2) + 2];
const W_IF_INDEX = V2.IF_INDEX >>> 2;
/** eth_protocol (bytes 0-1), direction (byte 2), transport protocol (byte 3) share word 0. */
const DIRECTION_MASK = ~(0xff << (8 * V2.DIRECTION));
const MIN_CAPACITY_ROWS = 64;

/** Settings of a {@link HealthJoin}. */
export interface HealthJoinOptions {
  /** Keys without interface and direction (DEDUPER=firstCome), as the kernel keyed the health. */
  readonly dedup: boolean;
  /**
   * Whether a health row no flow claimed becomes a record (the row at byte `row` of `bytes`):
   * the agent's filter (FILTER, FLOW_FILTER_RULES) decides, as it does for packets. Kept when absent.
   */
  readonly keepUnclaimed?: (bytes: Buffer, row: number) => boolean;
}

/** What became of the health rows joined so far. */
export interface HealthJoinCounts {
  /** Health rows written into the evicted flow of their key. */
  joined: number;
  /** Health rows no flow claimed, handed out as records of their own (zero packets). */
  ownRecords: number;
  /** Health rows no flow claimed whose key the filter rejects: dropped, as their packets were. */
  filtered: number;
}

/** Health rows waiting for the next eviction, and the join. One per pipeline. */
export class HealthJoin {
  /** What became of the health rows so far (for /metrics). */
  readonly counts: HealthJoinCounts = { joined: 0, ownRecords: 0, filtered: 0 };
  #rows = Buffer.alloc(MIN_CAPACITY_ROWS * V2_RECORD_BYTES);
  #words = int32Words(this.#rows, this.#rows.length >>> 2);
  #count = 0;
  /** First row of each key hash; rows of equal hashes are chained through #next. */
  readonly #byHash = new Map<number, number>();
  #next = new Int32Array(MIN_CAPACITY_ROWS);
  #claimed = new Uint8Array(MIN_CAPACITY_ROWS);
  /** The lookup key of the evicted row being joined. */
  readonly #probe = new Int32Array(V2_KEY_WORDS);

  constructor(readonly options: HealthJoinOptions) {}

  /** Health rows waiting for the next eviction. */
  get pending(): number {
    return this.#count;
  }

  /** Takes the rows of `batch`, a HealthBatch or DnsBatch (read now; the caller may reuse its buffer after). */
  add(batch: RecordBatch): void {
    const src = rowWords(batch);
    for (let i = 0; i < batch.count; i++) {
      const s = i * V2_ROW_WORDS;
      this.#lookupKey(src, s);
      const hash = hashKey(this.#probe, 0);
      const found = this.#find(hash);
      if (found >= 0) {
        // The same flow in a later drain: its samples are the later ones.
        mergeFlowHealth(this.#words, found * V2_ROW_WORDS + HEALTH_AT, src, s + HEALTH_AT, true);
        mergeFlowDns(this.#words, found * V2_ROW_WORDS + DNS_AT, src, s + DNS_AT);
        continue;
      }
      const r = this.#append();
      const d = r * V2_ROW_WORDS;
      for (let w = 0; w < V2_ROW_WORDS; w++) this.#words[d + w] = src[s + w];
      for (let w = 0; w < V2_KEY_WORDS; w++) this.#words[d + w] = this.#probe[w];
      this.#next[r] = this.#byHash.get(hash) ?? -1;
      this.#byHash.set(hash, r);
    }
  }

  /**
   * `evicted` with the health of every waiting row written into the flow of its key, followed by
   * the waiting rows no flow claimed (those the filter keeps). `evicted` is written in place;
   * the result is a new batch only when rows are appended. The waiting rows are gone after.
   */
  join(evicted: RecordBatch): RecordBatch {
    if (this.#count === 0) return evicted;
    const rows = rowWords(evicted);
    const bytes = evicted.bytes;
    for (let i = 0; i < evicted.count; i++) {
      const o = i * V2_ROW_WORDS;
      const etype = bytes.readUInt16LE(i * V2_RECORD_BYTES + V2.ETH_PROTOCOL);
      if (etype !== ETH_P_IP && etype !== ETH_P_IPV6) continue;
      this.#lookupKey(rows, o);
      const found = this.#find(hashKey(this.#probe, 0));
      if (found < 0 || this.#claimed[found]) continue;
      this.#claimed[found] = 1;
      mergeFlowHealth(rows, o + HEALTH_AT, this.#words, found * V2_ROW_WORDS + HEALTH_AT, true);
      mergeFlowDns(rows, o + DNS_AT, this.#words, found * V2_ROW_WORDS + DNS_AT);
      this.counts.joined++;
    }
    const out = this.#withUnclaimed(evicted);
    this.#clear();
    return out;
  }

  #withUnclaimed(evicted: RecordBatch): RecordBatch {
    const keep = this.options.keepUnclaimed;
    const kept: number[] = [];
    for (let r = 0; r < this.#count; r++) {
      if (this.#claimed[r]) continue;
      if (keep && !keep(this.#rows, r * V2_RECORD_BYTES)) {
        this.counts.filtered++;
        continue;
      }
      kept.push(r);
    }
    if (kept.length === 0) return evicted;
    this.counts.ownRecords += kept.length;
    const total = evicted.count + kept.length;
    const out = Buffer.alloc(total * V2_RECORD_BYTES);
    evicted.bytes.copy(out, 0, 0, evicted.count * V2_RECORD_BYTES);
    let at = evicted.count * V2_RECORD_BYTES;
    for (const r of kept) {
      this.#rows.copy(out, at, r * V2_RECORD_BYTES, (r + 1) * V2_RECORD_BYTES);
      // A record of its own lists the interface it was keyed by, as every flow lists its own.
      const ifIndex = out.readUInt32LE(at + V2.IF_INDEX);
      if (ifIndex !== 0) {
        out.writeUInt32LE(ifIndex, at + V2.CROSSED_IF_INDEX);
        out[at + V2.CROSSED_DIRECTION] = out[at + V2.DIRECTION];
        out[at + V2.CROSSED_COUNT] = 1;
      }
      at += V2_RECORD_BYTES;
    }
    return new RecordBatch(out, total, evicted.interfaces);
  }

  /** Writes the lookup key of the row at word `r` of `words` into #probe. */
  #lookupKey(words: Int32Array, r: number): void {
    const probe = this.#probe;
    for (let w = 0; w < V2_KEY_WORDS; w++) probe[w] = words[r + w];
    for (const w of W_MACS) probe[w] = 0;
    if (this.options.dedup) {
      probe[0] &= DIRECTION_MASK;
      probe[W_IF_INDEX] = 0;
    }
  }

  /** The waiting row whose key equals #probe, or -1. */
  #find(hash: number): number {
    const probe = this.#probe;
    const words = this.#words;
    for (let r = this.#byHash.get(hash) ?? -1; r >= 0; r = this.#next[r]) {
      const d = r * V2_ROW_WORDS;
      let same = true;
      for (let w = 0; w < V2_KEY_WORDS && same; w++) same = words[d + w] === probe[w];
      if (same) return r;
    }
    return -1;
  }

  #append(): number {
    if (this.#count * V2_RECORD_BYTES === this.#rows.length) {
      const grown = Buffer.alloc(this.#rows.length * 2);
      this.#rows.copy(grown);
      this.#rows = grown;
      this.#words = int32Words(grown, grown.length >>> 2);
      const next = new Int32Array(this.#next.length * 2);
      next.set(this.#next);
      this.#next = next;
      this.#claimed = new Uint8Array(this.#next.length);
    }
    return this.#count++;
  }

  #clear(): void {
    this.#rows.fill(0, 0, this.#count * V2_RECORD_BYTES);
    this.#claimed.fill(0, 0, this.#count);
    this.#count = 0;
    this.#byHash.clear();
  }
}
