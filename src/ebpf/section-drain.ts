/**
 * Drains a kernel section map (section-maps.ts) into rows: swap in the empty map, then
 * lookup-and-delete the old one in batches. Each row gets the entry's key and section, the
 * section's kernel time (a health section's latest drop, a DNS section's latest message) in
 * Unix-epoch nanoseconds (the kernel keeps CLOCK_MONOTONIC, as for first and last seen), and the
 * collection time as its first and last seen. No object is made per entry.
 */
import { RowWords } from '../codec/row-words.ts';
import {
  V2,
  V2_DNS_WORD,
  V2_DNS_WORDS,
  V2_HEALTH_WORD,
  V2_HEALTH_WORDS,
  V2_KEY_BYTES,
  V2_KEY_WORDS,
  V2_METRICS_WORD,
} from '../codec/v2-layout.ts';
import type { SplitOffset } from './clock.ts';
import { MapBatchReader } from './map-batch.ts';
import { addOffsetWords, type RowSink } from './rows.ts';
import type { SectionMaps } from './section-maps.ts';

const KEY_WORDS = V2_KEY_WORDS;
const W_FIRST = KEY_WORDS + V2_METRICS_WORD.FIRST_SEEN_NS;
const W_LAST = KEY_WORDS + V2_METRICS_WORD.LAST_SEEN_NS;

/** Where a section lies in a row, and its one kernel time. */
export interface SectionLayout {
  /** First word of the section in a row. */
  readonly atWord: number;
  /** Words of the section. */
  readonly words: number;
  /** Word of the section (from its start) holding a CLOCK_MONOTONIC time, 0 when unset. */
  readonly timeWord: number;
}

/** struct flow_health in a row: its time is the latest drop's. */
export const HEALTH_LAYOUT: SectionLayout = {
  atWord: V2.RTT_MIN_NS >>> 2,
  words: V2_HEALTH_WORDS,
  timeWord: V2_HEALTH_WORD.DROP_LATEST_NS,
};

/** struct flow_dns in a row: its time is the latest message's. */
export const DNS_LAYOUT: SectionLayout = {
  atWord: V2.DNS_LATENCY_NS >>> 2,
  words: V2_DNS_WORDS,
  timeWord: V2_DNS_WORD.LATEST_NS,
};

/** Moves every entry of a section map out of the kernel into rows. One per `SectionMaps`. */
export class SectionMapDrainer {
  readonly #reader: MapBatchReader;
  readonly #rowWords = new RowWords();

  constructor(
    private readonly maps: SectionMaps,
    private readonly layout: SectionLayout,
  ) {
    this.#reader = new MapBatchReader(V2_KEY_BYTES, layout.words * 4);
  }

  /**
   * Swaps the maps and appends every entry of the previous one to `sink`: kernel times shifted
   * by `offset` (monotonic → Unix), first and last seen set to `collectedAt` (Unix ns as 32-bit
   * halves). Returns the number of rows appended.
   */
  drainInto(sink: RowSink, offset: SplitOffset, collectedAt: SplitOffset): number {
    const fd = this.maps.swap();
    const { atWord, words, timeWord } = this.layout;
    return this.#reader.drain(fd, `the ${this.maps.kind.what} map`, (n) => {
      const keys = this.#reader.keyWords;
      const values = this.#reader.valueWords;
      for (let i = 0; i < n; i++) {
        const o = sink.appendRow() >>> 2;
        const row = this.#rowWords.of(sink.bytes);
        const k = i * KEY_WORDS;
        for (let w = 0; w < KEY_WORDS; w++) row[o + w] = keys[k + w];
        const v = i * words;
        for (let w = 0; w < words; w++) row[o + atWord + w] = values[v + w];
        const t = o + atWord + timeWord;
        if ((row[t] | row[t + 1]) !== 0) addOffsetWords(row, t, offset);
        row[o + W_FIRST] = collectedAt.lo;
        row[o + W_FIRST + 1] = collectedAt.hi;
        row[o + W_LAST] = collectedAt.lo;
        row[o + W_LAST + 1] = collectedAt.hi;
      }
    });
  }
}
