/**
 * Drains the kernel flow map into batch rows: swap in the empty map, then lookup-and-delete the
 * old one in batches, merging per-CPU values into one row per flow and turning kernel monotonic
 * times into Unix-epoch nanoseconds. No object is made per flow.
 */
import { mergeFlowMetrics } from '../codec/merge-rule.ts';
import { RowWords } from '../codec/row-words.ts';
import { V2_KEY_BYTES, V2_KEY_WORDS, V2_METRICS_WORD, V2_METRICS_WORDS } from '../codec/v2-layout.ts';
import type { SplitOffset } from './clock.ts';
import { compactCrossed, restoreDedupKey } from './dedup-rows.ts';
import { MapBatchReader } from './map-batch.ts';
import type { FlowObject } from './object.ts';
import { addOffsetWords, type RowSink } from './rows.ts';

const KEY_WORDS = V2_KEY_WORDS;
const METRICS_WORDS = V2_METRICS_WORDS;
const W_PACKETS = V2_METRICS_WORD.PACKETS;
const W_FIRST = V2_METRICS_WORD.FIRST_SEEN_NS;
const W_LAST = V2_METRICS_WORD.LAST_SEEN_NS;

const W_CROSSED_COUNT = V2_METRICS_WORD.CROSSED_DIRECTION_COUNT;
/** A slot that only listed interfaces: merged as never first-seen, never last-seen. */
const listOnly = new Int32Array(METRICS_WORDS);

function crossedCount(words: Int32Array, m: number): number {
  return (words[m + W_CROSSED_COUNT] >>> 16) & 0xff;
}

/**
 * Folds one flow's per-CPU values (`cpus` consecutive `struct flow_metrics` from word `v` of
 * `values`) into the metrics at word `at` of `into`, by the merge rule, in CPU order. CPUs that
 * counted no packet are skipped, except that, in dedup mode, a CPU that only met the flow on
 * interfaces that do not count it adds those interfaces (and a tunnel when the others have none)
 * after the counting ones: its slot has no times, so it must not be taken as the first or the
 * latest. All zero when no CPU counted a packet.
 */
export function mergePerCpuMetrics(
  values: Int32Array,
  v: number,
  cpus: number,
  into: Int32Array,
  at: number,
): void {
  let merged = false;
  let listOnlySlots = 0;
  for (let cpu = 0, s = v; cpu < cpus; cpu++, s += METRICS_WORDS) {
    if (values[s + W_PACKETS] === 0 && values[s + W_PACKETS + 1] === 0) {
      if (crossedCount(values, s) !== 0) listOnlySlots++;
      continue;
    }
    if (merged) {
      mergeFlowMetrics(into, at, values, s);
    } else {
      for (let w = 0; w < METRICS_WORDS; w++) into[at + w] = values[s + w];
      merged = true;
    }
  }
  if (!merged) {
    into.fill(0, at, at + METRICS_WORDS);
    return;
  }
  for (let cpu = 0, s = v; listOnlySlots > 0 && cpu < cpus; cpu++, s += METRICS_WORDS) {
    if (values[s + W_PACKETS] !== 0 || values[s + W_PACKETS + 1] !== 0 || crossedCount(values, s) === 0)
      continue;
    for (let w = 0; w < METRICS_WORDS; w++) listOnly[w] = values[s + w];
    listOnly[W_FIRST] = -1; // the latest first-seen there is: its list goes after the counted one's
    listOnly[W_FIRST + 1] = -1;
    listOnly[W_LAST] = 0;
    listOnly[W_LAST + 1] = 0;
    mergeFlowMetrics(into, at, listOnly, 0);
    listOnlySlots--;
  }
}

/** Moves every flow out of the kernel into rows. One per `FlowObject`. */
export class FlowMapDrainer {
  readonly #reader: MapBatchReader;
  /** One flow's metrics while its per-CPU values are folded. */
  readonly #merged = new Int32Array(METRICS_WORDS);
  readonly #rowWords = new RowWords();

  constructor(private readonly obj: FlowObject) {
    this.#reader = new MapBatchReader(V2_KEY_BYTES, obj.flowValueBytes);
  }

  /**
   * Swaps the flow maps and appends every flow of the previous one to `sink`, times shifted by
   * `offset` (monotonic → Unix). Returns the number of rows appended.
   */
  drainInto(sink: RowSink, offset: SplitOffset): number {
    const fd = this.obj.swapFlowMaps();
    return this.#reader.drain(fd, 'the flow map', (n) => {
      for (let i = 0; i < n; i++) this.#appendFlow(sink, i, offset);
    });
  }

  #appendFlow(sink: RowSink, i: number, offset: SplitOffset): void {
    const o = sink.appendRow() >>> 2;
    const row = this.#rowWords.of(sink.bytes);
    const keys = this.#reader.keyWords;
    const k = i * KEY_WORDS;
    for (let w = 0; w < KEY_WORDS; w++) row[o + w] = keys[k + w];
    const m = o + KEY_WORDS;
    const v = (i * this.obj.flowValueBytes) >>> 2;
    if (this.obj.options.mapKind === 'shared') {
      const values = this.#reader.valueWords;
      for (let w = 0; w < METRICS_WORDS; w++) row[m + w] = values[v + w];
    } else {
      const merged = this.#merged;
      mergePerCpuMetrics(this.#reader.valueWords, v, this.obj.possibleCpus, merged, 0);
      for (let w = 0; w < METRICS_WORDS; w++) row[m + w] = merged[w];
    }
    addOffsetWords(row, m + W_FIRST, offset);
    addOffsetWords(row, m + W_LAST, offset);
    if (this.obj.options.mapKind === 'shared') compactCrossed(sink.bytes, o << 2);
    if (this.obj.options.dedup !== false) restoreDedupKey(sink.bytes, o << 2);
  }
}
