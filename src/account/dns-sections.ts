/**
 * DNS sections by flow key: what DNS tracking learnt of each cached flow, beside the accounter's
 * flow table (which keeps key and metrics only). The accounter absorbs the DNS section of each
 * row it accounts, in order (`absorb`), and joins each row it evicts with its flow's section
 * (`join`), so a flow's record carries the DNS of exactly the packets it counts. It is the
 * user-space twin of the kernel's DNS map (struct flow_key → struct flow_dns), whose drain will
 * feed it the same way.
 *
 * Keys hash with the flow table's seeded hash (key-hash.ts); the table holds at most
 * `maxSections`, and a section beyond is dropped and counted.
 */
import type { EventSections } from '../codec/event-sections.ts';
import { mergeFlowDns } from '../codec/merge-rule.ts';
import type { RecordBatch } from '../codec/record-batch.ts';
import { rowWords } from '../codec/row-words.ts';
import {
  V2,
  V2_DNS_WORD,
  V2_DNS_WORDS,
  V2_KEY_WORDS,
  V2_RECORD_BYTES,
  V2_ROW_WORDS,
} from '../codec/v2-layout.ts';
import { hashKey } from './key-hash.ts';

/** One flow's section; flows whose keys share a hash are chained. */
interface SectionEntry {
  readonly key: Int32Array;
  readonly words: Int32Array;
  next: SectionEntry | undefined;
}

const W_DNS = V2.DNS_LATENCY_NS / 4;
/** dns_errno and dns_record_flags in the NAME_LEN_ERRNO_FLAGS word: a section holds something. */
const ERRNO_AND_FLAGS = 0xffff00;

function sameKey(a: Int32Array, i: number, b: Int32Array, j: number): boolean {
  for (let w = 0; w < V2_KEY_WORDS; w++) if (a[i + w] !== b[j + w]) return false;
  return true;
}

/** DNS sections keyed by flow; see the module comment. */
export class DnsSections {
  readonly #byHash = new Map<number, SectionEntry>();
  #size = 0;
  /** Sections dropped because the table was full. */
  dropped = 0;

  constructor(
    /** Most sections held at once. */
    readonly maxSections: number,
  ) {
    if (!Number.isInteger(maxSections) || maxSections < 1)
      throw new RangeError(`maxSections must be a positive integer, got ${maxSections}`);
  }

  /** Sections waiting for their flow's row. */
  get size(): number {
    return this.#size;
  }

  /**
   * Merges `section` (a struct flow_dns at word `s`) into the section of the flow whose 16-word
   * key is at word `k` of `key`. False when the flow has none yet and the table is full: the
   * section is dropped and counted.
   */
  merge(key: Int32Array, k: number, section: Int32Array, s: number): boolean {
    const hash = hashKey(key, k);
    const head = this.#byHash.get(hash);
    for (let e = head; e !== undefined; e = e.next) {
      if (sameKey(e.key, 0, key, k)) {
        mergeFlowDns(e.words, 0, section, s);
        return true;
      }
    }
    if (this.#size >= this.maxSections) {
      this.dropped++;
      return false;
    }
    const entry: SectionEntry = {
      key: key.slice(k, k + V2_KEY_WORDS),
      words: section.slice(s, s + V2_DNS_WORDS),
      next: head,
    };
    this.#byHash.set(hash, entry);
    this.#size++;
    return true;
  }

  /**
   * Takes the DNS sections of rows `from` to `to` - 1 of `words` (a batch seen through
   * `rowWords`): each one that holds anything is merged into its flow's.
   */
  absorb(words: Int32Array, from: number, to: number): void {
    for (let i = from; i < to; i++) this.#absorbRow(words, i * V2_ROW_WORDS);
  }

  /**
   * Takes the DNS sections of the section rows of events `from` to `to` - 1 of a batch of flow
   * events (src/codec/event-sections.ts), as {@link absorb} takes rows'.
   */
  absorbSections(sections: EventSections, from: number, to: number): void {
    for (let k = sections.firstAtOrAfter(from); k < sections.count && sections.events[k] < to; k++) {
      this.#absorbRow(sections.words, k * V2_ROW_WORDS);
    }
  }

  /** Merges the DNS section of the row at word `r` into its flow's, when it holds anything. */
  #absorbRow(words: Int32Array, r: number): void {
    const d = r + W_DNS;
    const any =
      words[d + V2_DNS_WORD.QUERIES] |
      words[d + V2_DNS_WORD.ANSWERS] |
      words[d + V2_DNS_WORD.UNANSWERED] |
      words[d + V2_DNS_WORD.MALFORMED] |
      (words[d + V2_DNS_WORD.NAME_LEN_ERRNO_FLAGS] & ERRNO_AND_FLAGS);
    if (any !== 0) this.merge(words, r, words, d);
  }

  /**
   * Merges the section of each row's flow into the row's DNS section and forgets it. Returns the
   * rows that got one.
   */
  join(batch: RecordBatch): number {
    if (this.#size === 0 || batch.count === 0) return 0;
    const words = rowWords(batch);
    let joined = 0;
    for (let i = 0; i < batch.count && this.#size > 0; i++) {
      const r = i * V2_ROW_WORDS;
      const hash = hashKey(words, r);
      let previous: SectionEntry | undefined;
      for (let e = this.#byHash.get(hash); e !== undefined; previous = e, e = e.next) {
        if (!sameKey(e.key, 0, words, r)) continue;
        mergeFlowDns(words, r + W_DNS, e.words, 0);
        if (previous !== undefined) previous.next = e.next;
        else if (e.next !== undefined) this.#byHash.set(hash, e.next);
        else this.#byHash.delete(hash);
        this.#size--;
        joined++;
        break;
      }
    }
    if (joined > 0 && words.buffer !== batch.bytes.buffer) {
      // An unaligned batch was read through a copy: its DNS sections go back into the rows.
      const copy = Buffer.from(words.buffer, words.byteOffset, words.byteLength);
      for (let i = 0; i < batch.count; i++) {
        const o = i * V2_RECORD_BYTES;
        copy.copy(batch.bytes, o + V2.DNS_LATENCY_NS, o + V2.DNS_LATENCY_NS, o + V2_RECORD_BYTES);
      }
    }
    return joined;
  }
}
