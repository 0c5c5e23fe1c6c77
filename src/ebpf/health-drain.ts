/**
 * Drains the kernel health map into health rows (src/codec/health-batch.ts): swap in the empty
 * map, then lookup-and-delete the old one in batches. Each row gets the entry's key and health
 * section, the time of the latest drop in Unix-epoch nanoseconds (the kernel keeps
 * CLOCK_MONOTONIC, as for first and last seen), and the collection time as its first and last
 * seen. No object is made per entry.
 */
import { RowWords } from '../codec/row-words.ts';
import {
  V2,
  V2_HEALTH_BYTES,
  V2_HEALTH_WORD,
  V2_HEALTH_WORDS,
  V2_KEY_BYTES,
  V2_KEY_WORDS,
  V2_METRICS_WORD,
} from '../codec/v2-layout.ts';
import type { SplitOffset } from './clock.ts';
import type { HealthMaps } from './health-maps.ts';
import { MapBatchReader } from './map-batch.ts';
import { addOffsetWords, type RowSink } from './rows.ts';

const KEY_WORDS = V2_KEY_WORDS;
const HEALTH_AT = V2.RTT_MIN_NS >>> 2;
const W_FIRST = KEY_WORDS + V2_METRICS_WORD.FIRST_SEEN_NS;
const W_LAST = KEY_WORDS + V2_METRICS_WORD.LAST_SEEN_NS;
const W_DROP_LATEST = HEALTH_AT + V2_HEALTH_WORD.DROP_LATEST_NS;

/** Moves every health entry out of the kernel into rows. One per `HealthMaps`. */
export class HealthMapDrainer {
  readonly #reader = new MapBatchReader(V2_KEY_BYTES, V2_HEALTH_BYTES);
  readonly #rowWords = new RowWords();

  constructor(private readonly maps: HealthMaps) {}

  /**
   * Swaps the health maps and appends every entry of the previous one to `sink`: kernel times
   * shifted by `offset` (monotonic → Unix), first and last seen set to `collectedAt` (Unix ns as
   * 32-bit halves). Returns the number of rows appended.
   */
  drainInto(sink: RowSink, offset: SplitOffset, collectedAt: SplitOffset): number {
    const fd = this.maps.swap();
    return this.#reader.drain(fd, 'the health map', (n) => {
      const keys = this.#reader.keyWords;
      const values = this.#reader.valueWords;
      for (let i = 0; i < n; i++) {
        const o = sink.appendRow() >>> 2;
        const row = this.#rowWords.of(sink.bytes);
        const k = i * KEY_WORDS;
        for (let w = 0; w < KEY_WORDS; w++) row[o + w] = keys[k + w];
        const v = i * V2_HEALTH_WORDS;
        for (let w = 0; w < V2_HEALTH_WORDS; w++) row[o + HEALTH_AT + w] = values[v + w];
        if ((row[o + W_DROP_LATEST] | row[o + W_DROP_LATEST + 1]) !== 0)
          addOffsetWords(row, o + W_DROP_LATEST, offset);
        row[o + W_FIRST] = collectedAt.lo;
        row[o + W_FIRST + 1] = collectedAt.hi;
        row[o + W_LAST] = collectedAt.lo;
        row[o + W_LAST + 1] = collectedAt.hi;
      }
    });
  }
}
