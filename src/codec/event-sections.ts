/**
 * The health and DNS sections of the few flow events that carry them. A capture's event is key
 * and metrics only (event-batch.ts); the offline TCP analysis and DNS tracking measure something
 * for some packets only (a handshake, a retransmission, a DNS message), and write it into a
 * section row of that packet: a whole v2 row holding the event's key, zero metrics (the event
 * carries them) and the health and DNS sections measured. The rows are kept in event order
 * beside the batch, with the index of their event, so the accounter merges each into its flow as
 * it folds that event (the flow table's health, the DNS sections by flow) and the packets
 * without any cost nothing but one comparison each.
 *
 * Row-shaped so that writers use the row offsets of `V2` unchanged and the readers of rows'
 * health and DNS sections read these too.
 */
import { V2_KEY_WORDS, V2_RECORD_BYTES, V2_ROW_WORDS } from './v2-layout.ts';

/** Section rows of one batch: row `k` (at word `k * V2_ROW_WORDS` of `words`) is event `events[k]`'s. */
export class EventSections {
  constructor(
    /** Event index of each section row, ascending. */
    readonly events: Int32Array,
    /** The section rows, as words. */
    readonly words: Int32Array,
    /** Section rows in use. */
    readonly count: number,
  ) {}

  /** The first section row whose event is at or after event `from` (`count` when none is). */
  firstAtOrAfter(from: number): number {
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.events[mid] < from) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** Section rows of 16 events to start with; doubled as needed. */
const INITIAL_SECTION_ROWS = 16;

/**
 * Collects the section rows of the events a builder appends; see the module comment. Writers ask
 * {@link rowOf} for the row of an event and write into {@link bytes} (re-read after `rowOf`,
 * which may replace it).
 */
export class EventSectionsBuilder {
  #events = new Int32Array(INITIAL_SECTION_ROWS);
  #bytes = Buffer.alloc(INITIAL_SECTION_ROWS * V2_RECORD_BYTES);
  #words = new Int32Array(this.#bytes.buffer, this.#bytes.byteOffset, this.#bytes.length >>> 2);
  #count = 0;

  /** The section rows' bytes. */
  get bytes(): Buffer {
    return this.#bytes;
  }

  /** The section rows as words. */
  get words(): Int32Array {
    return this.#words;
  }

  /** Section rows collected since the last {@link take}. */
  get count(): number {
    return this.#count;
  }

  /**
   * The byte offset in {@link bytes} of the section row of event `event`, whose 16 key words are
   * at word `k` of `eventWords`: the one made for it already, else a new zeroed row holding the
   * key. Events get their rows mostly in order; one made for an earlier event than the last
   * (a DNS message of the packet after the unanswered queries it expired) is put in its place.
   */
  rowOf(event: number, eventWords: ArrayLike<number>, k: number): number {
    let at = this.#count;
    while (at > 0 && this.#events[at - 1] >= event) {
      if (this.#events[at - 1] === event) return (at - 1) * V2_RECORD_BYTES;
      at--;
    }
    if (this.#count === this.#events.length) this.#grow();
    const events = this.#events;
    const words = this.#words;
    if (at < this.#count) {
      events.copyWithin(at + 1, at, this.#count);
      words.copyWithin((at + 1) * V2_ROW_WORDS, at * V2_ROW_WORDS, this.#count * V2_ROW_WORDS);
      words.fill(0, at * V2_ROW_WORDS, (at + 1) * V2_ROW_WORDS);
    }
    events[at] = event;
    const r = at * V2_ROW_WORDS;
    for (let w = 0; w < V2_KEY_WORDS; w++) words[r + w] = eventWords[k + w];
    this.#count++;
    return at * V2_RECORD_BYTES;
  }

  /** Forgets the section rows of events `event` and later (events a builder dropped). */
  dropFrom(event: number): void {
    while (this.#count > 0 && this.#events[this.#count - 1] >= event) {
      this.#count--;
      this.#words.fill(0, this.#count * V2_ROW_WORDS, (this.#count + 1) * V2_ROW_WORDS);
    }
  }

  /**
   * The rows collected, in arrays of their own (allocated per batch, and only for a batch with
   * rows), undefined when none were; the builder starts over.
   */
  take(): EventSections | undefined {
    const count = this.#count;
    if (count === 0) return undefined;
    const taken = new EventSections(
      this.#events.slice(0, count),
      this.#words.slice(0, count * V2_ROW_WORDS),
      count,
    );
    this.#words.fill(0, 0, count * V2_ROW_WORDS);
    this.#count = 0;
    return taken;
  }

  #grow(): void {
    const rows = this.#events.length * 2;
    const events = new Int32Array(rows);
    events.set(this.#events);
    const bytes = Buffer.alloc(rows * V2_RECORD_BYTES);
    this.#bytes.copy(bytes);
    this.#events = events;
    this.#bytes = bytes;
    this.#words = new Int32Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 2);
  }
}
