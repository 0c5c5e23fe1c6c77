/**
 * Expiring the kernel's pending DNS queries (bpf/dns.h, flowtap_dns_pending): at each drain every
 * query that waited longer than the query timeout is taken out of the map and becomes a row of its
 * query's flow with 0 packets carrying its DNS section with `unanswered` 1, so a query never
 * answered is counted on its flow and no entry stays (bpf/flow_record.h, struct flow_dns). When
 * the map is full, the oldest quarter goes too, so new queries can be timed again.
 *
 * A query is taken with lookup-and-delete: when its response takes it in the kernel at the same
 * moment, only one of the two succeeds, so a query is answered or unanswered, never both.
 */
import { constants } from 'node:os';
import { RowWords } from '../codec/row-words.ts';
import {
  DNS_PENDING_BYTES,
  DNS_QUERY_KEY_BYTES,
  DnsLimit,
  V2,
  V2_DNS_WORD,
  V2_DNS_WORDS,
  V2_KEY_WORDS,
  V2_METRICS_WORD,
} from '../codec/v2-layout.ts';
import { TWO_POW_32 } from '../model/u64.ts';
import type { SplitOffset } from './clock.ts';
import { kernelError } from './kernel-error.ts';
import { batchOpts, libbpf } from './libbpf.ts';
import { addOffsetWords, type RowSink } from './rows.ts';

/** Words of struct flow_dns_pending before its flow key (query_ns) and before its section. */
const PENDING_FLOW_WORD = 2;
const PENDING_SECTION_WORD = PENDING_FLOW_WORD + V2_KEY_WORDS;
const PENDING_WORDS = DNS_PENDING_BYTES / 4;
const DNS_AT = V2.DNS_LATENCY_NS >>> 2;
const W_FIRST = V2_KEY_WORDS + V2_METRICS_WORD.FIRST_SEEN_NS;
const W_LAST = V2_KEY_WORDS + V2_METRICS_WORD.LAST_SEEN_NS;

/** What the expiry did so far. */
export interface DnsPendingCounts {
  /** Queries expired as unanswered (timed out, or the oldest of a full map). */
  unanswered: number;
  /** Queries waiting after the latest expiry. */
  pending: number;
}

/** Reads and expires the pending-query map `fd` of `capacity` entries; see the module comment. */
export class DnsPendingExpiry {
  readonly counts: DnsPendingCounts = { unanswered: 0, pending: 0 };
  readonly #keys: Buffer;
  readonly #values: Buffer;
  readonly #valueWords: Uint32Array;
  readonly #value = Buffer.alloc(DNS_PENDING_BYTES);
  readonly #valueWordsOne = new Uint32Array(this.#value.buffer, this.#value.byteOffset, PENDING_WORDS);
  readonly #inBatch = Buffer.alloc(8);
  readonly #outBatch = Buffer.alloc(8);
  readonly #count = Buffer.alloc(4);
  readonly #opts = batchOpts();
  readonly #rowWords = new RowWords();

  constructor(
    private readonly fd: number,
    /** The query timeout in nanoseconds. */
    private readonly timeoutNs: bigint,
    readonly capacity: number = DnsLimit.PENDING_MAX,
  ) {
    this.#keys = Buffer.alloc(capacity * DNS_QUERY_KEY_BYTES);
    this.#values = Buffer.alloc(capacity * DNS_PENDING_BYTES);
    this.#valueWords = new Uint32Array(
      this.#values.buffer,
      this.#values.byteOffset,
      this.#values.length >>> 2,
    );
  }

  /**
   * Appends a row to `sink` for every query that waited `timeoutNs` by `nowNs` (CLOCK_MONOTONIC),
   * and for the oldest quarter when the map is full. Kernel times are shifted by `offset`; first
   * and last seen are `collectedAt`. Returns the rows appended.
   */
  expireInto(sink: RowSink, nowNs: bigint, offset: SplitOffset, collectedAt: SplitOffset): number {
    const n = this.#readAll();
    const times = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const v = i * PENDING_WORDS;
      times[i] = this.#valueWords[v] + this.#valueWords[v + 1] * TWO_POW_32;
    }
    // Times as doubles lose below-microsecond precision after 104 days of uptime: ample for a 5 s cut.
    let cutoff = Number(nowNs - this.timeoutNs);
    if (n >= this.capacity) {
      const sorted = Float64Array.from(times).sort();
      cutoff = Math.max(cutoff, sorted[Math.floor(n / 4)]);
    }
    let rows = 0;
    for (let i = 0; i < n; i++) {
      if (times[i] > cutoff) continue;
      const key = this.#keys.subarray(i * DNS_QUERY_KEY_BYTES, (i + 1) * DNS_QUERY_KEY_BYTES);
      const result: number = libbpf().mapLookupAndDeleteElem(this.fd, key, this.#value);
      if (result < 0) {
        if (-result === constants.errno.ENOENT) continue; // its response took it meanwhile
        throw kernelError('expiring a pending DNS query', result);
      }
      this.#appendUnanswered(sink, offset, collectedAt);
      rows++;
    }
    this.counts.unanswered += rows;
    this.counts.pending = n - rows;
    return rows;
  }

  /** Reads every entry into #keys/#values (without deleting); returns how many. */
  #readAll(): number {
    const lib = libbpf();
    let total = 0;
    let first = true;
    while (total < this.capacity) {
      this.#count.writeUInt32LE(this.capacity - total, 0);
      const result: number = lib.mapLookupBatch(
        this.fd,
        first ? null : this.#inBatch,
        this.#outBatch,
        this.#keys.subarray(total * DNS_QUERY_KEY_BYTES),
        this.#values.subarray(total * DNS_PENDING_BYTES),
        this.#count,
        this.#opts,
      );
      if (result < 0 && -result !== constants.errno.ENOENT) {
        throw kernelError('reading the pending DNS queries', result);
      }
      total += this.#count.readUInt32LE(0);
      if (result < 0) break; // ENOENT: every entry read
      this.#outBatch.copy(this.#inBatch);
      first = false;
    }
    return total;
  }

  /** A row of the flow of the query just taken (in #value), carrying its section, unanswered 1. */
  #appendUnanswered(sink: RowSink, offset: SplitOffset, collectedAt: SplitOffset): void {
    const o = sink.appendRow() >>> 2;
    const row = this.#rowWords.of(sink.bytes);
    const value = this.#valueWordsOne;
    for (let w = 0; w < V2_KEY_WORDS; w++) row[o + w] = value[PENDING_FLOW_WORD + w];
    for (let w = 0; w < V2_DNS_WORDS; w++) row[o + DNS_AT + w] = value[PENDING_SECTION_WORD + w];
    row[o + DNS_AT + V2_DNS_WORD.UNANSWERED] = 1;
    const t = o + DNS_AT + V2_DNS_WORD.LATEST_NS;
    if ((row[t] | row[t + 1]) !== 0) addOffsetWords(row, t, offset);
    row[o + W_FIRST] = collectedAt.lo;
    row[o + W_FIRST + 1] = collectedAt.hi;
    row[o + W_LAST] = collectedAt.lo;
    row[o + W_LAST + 1] = collectedAt.hi;
  }
}
