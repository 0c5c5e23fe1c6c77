/**
 * The live terminal view of `flowtap run` (the default when stdout is a terminal): a flow sink
 * that aggregates evicted flows over a short sliding window and redraws one screen in place every
 * second: totals, top flows and top talkers by rate, the last log lines in a pane (logs never go
 * between the rows). Keys: `p` or space pauses the screen, `s` changes the sort key, `q` or
 * Ctrl-C quits (a clean stop, like SIGINT). It owns the terminal while it runs: the alternate
 * screen, a hidden cursor and raw keyboard input, all given back on stop, after which log lines go
 * to stderr again.
 */
import { Writable } from 'node:stream';
import type { RecordBatch } from '../../codec/record-batch.ts';
import { humanBytes } from '../../model/names.ts';
import { emptySinkStats, type FlowSink, type SinkStats } from '../../sink/flow-sink.ts';
import { FlowAggregate } from '../../web/aggregate.ts';
import type { HealthSnapshot } from '../../web/health.ts';
import { buildSnapshot, NO_FILTER } from '../../web/snapshot.ts';
import { humanLogLine } from '../log-lines.ts';
import { LIVE_SORT_KEYS, type LiveSortKey, renderLiveScreen } from './live-screen.ts';

/** Seconds one segment of the rate window covers, and how many segments: rates over the last 10 s. */
const WINDOW_SEGMENT_SECONDS = 2;
const WINDOW_SEGMENTS = 5;
/** How often the screen is redrawn. */
export const LIVE_REFRESH_MS = 1_000;
/** Rows per table asked of the aggregate: more than any terminal shows. */
const TOP_ROWS = 100;
/** Log lines kept for the pane (and printed on stop). */
const LOG_LINES_KEPT = 50;

const ENTER_SCREEN = '\x1b[?1049h\x1b[?25l';
const LEAVE_SCREEN = '\x1b[?25h\x1b[?1049l';
const HOME_AND_CLEAR = '\x1b[H';
const CLEAR_TO_END = '\x1b[J';
const CLEAR_LINE_END = '\x1b[K';

/** The terminal the view draws on. */
export interface LiveTerminal {
  write(text: string): unknown;
  readonly columns?: number;
  readonly rows?: number;
  on(event: 'resize', listener: () => void): unknown;
  off(event: 'resize', listener: () => void): unknown;
}

/** Keyboard input: stdin when it is a terminal. */
export interface LiveKeys {
  setRawMode?(raw: boolean): unknown;
  resume(): unknown;
  pause(): unknown;
  on(event: 'data', listener: (data: Buffer | string) => void): unknown;
  off(event: 'data', listener: (data: Buffer | string) => void): unknown;
}

/** Settings of a {@link LiveView}. */
export interface LiveViewOptions {
  out: LiveTerminal;
  /** Keys; none (stdin not a terminal) leaves the view without keys but for signals. */
  keys?: LiveKeys;
  colour: boolean;
  /** Where log lines go once the view has stopped (stderr). */
  stderr: { write(text: string): unknown };
  /** Called on `q` or Ctrl-C: stop the agent. */
  onQuit: () => void;
  /** Address → name (--resolve); absent: addresses as they are. */
  nameOf?: (address: string) => string;
  /** Wall clock, Unix ms (tests pass a fake). */
  nowMs?: () => number;
}

/** See the module comment. */
export class LiveView implements FlowSink {
  readonly name = 'json';
  readonly stats: SinkStats = emptySinkStats();
  /** Where the agent's logger writes (JSON lines, shown as text in the pane). */
  readonly logStream: Writable;
  readonly #options: LiveViewOptions;
  readonly #aggregate: FlowAggregate;
  readonly #logLines: string[] = [];
  #health: () => HealthSnapshot | undefined = () => undefined;
  #timer: NodeJS.Timeout | undefined;
  #drawing = false;
  #stopped = false;
  #paused = false;
  #sort: LiveSortKey = 'bytes';
  #startedAtMs = 0;
  readonly #onResize = () => this.draw(true);
  readonly #onKey = (data: Buffer | string) => this.#key(String(data));

  constructor(options: LiveViewOptions) {
    this.#options = options;
    this.#aggregate = new FlowAggregate({
      timeline: 'wall',
      chartSeconds: WINDOW_SEGMENT_SECONDS * WINDOW_SEGMENTS,
      topSegmentSeconds: WINDOW_SEGMENT_SECONDS,
      topSegmentCount: WINDOW_SEGMENTS,
      nowMs: options.nowMs,
    });
    this.logStream = new Writable({
      write: (chunk: Buffer, _encoding, done) => {
        this.#log(chunk.toString());
        done();
      },
    });
  }

  /** Takes the terminal and draws every second, with `health` for the totals. */
  start(health: () => HealthSnapshot | undefined): void {
    if (this.#stopped || this.#timer) return;
    this.#health = health;
    this.#startedAtMs = this.#nowMs();
    const { out, keys } = this.#options;
    out.write(ENTER_SCREEN);
    out.on('resize', this.#onResize);
    if (keys) {
      keys.setRawMode?.(true);
      keys.on('data', this.#onKey);
      keys.resume();
    }
    this.#timer = setInterval(() => this.draw(), LIVE_REFRESH_MS);
    this.draw();
  }

  /** Counts the batch into the window at once; never refuses while running. */
  export(batch: RecordBatch): boolean {
    this.#aggregate.add(batch);
    this.stats.batchesSent++;
    this.stats.flowsSent += batch.count;
    return true;
  }

  /** Redraws the screen (every second; at once after a key). A paused screen is redrawn only by a key. */
  draw(byKey = false): void {
    if (this.#stopped || this.#timer === undefined || this.#drawing) return;
    if (this.#paused && !byKey) return;
    this.#drawing = true;
    try {
      this.#aggregate.tick();
      const health = this.#health();
      const snapshot = buildSnapshot(this.#aggregate, NO_FILTER, TOP_ROWS, undefined);
      // Rates are over the window, or over the run while it is shorter than the window.
      const runSeconds = Math.max(1, Math.round((this.#nowMs() - this.#startedAtMs) / 1000));
      const windowSeconds = Math.min(snapshot.topWindowSeconds, runSeconds);
      let bytes = 0;
      let packets = 0;
      for (const entry of this.#aggregate.flows.entries()) {
        bytes += entry.bytes;
        packets += entry.packets;
      }
      const { out } = this.#options;
      const lines = renderLiveScreen({
        columns: out.columns ?? 100,
        rows: out.rows ?? 30,
        colour: this.#options.colour,
        paused: this.#paused,
        sort: this.#sort,
        windowSeconds,
        totals: {
          packetsPerSecond: packets / windowSeconds,
          bytesPerSecond: bytes / windowSeconds,
          flows: health?.cachedFlows ?? snapshot.matchingFlows,
          drops: dropsOf(health),
          attachedInterfaces: health?.attachedInterfaces ?? [],
          warnings: health?.warnings ?? [],
        },
        flows: snapshot.flows,
        talkers: snapshot.talkers,
        logLines: this.#logLines,
        nameOf: this.#options.nameOf,
      });
      out.write(`${HOME_AND_CLEAR}${lines.join(`${CLEAR_LINE_END}\n`)}${CLEAR_LINE_END}${CLEAR_TO_END}`);
    } finally {
      this.#drawing = false;
    }
  }

  /**
   * Gives the terminal back (normal screen, cursor, keyboard), prints the log lines the pane held
   * and, if it was started, a one-line summary on stderr; later log lines go to stderr. Idempotent.
   */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    const { out, keys, stderr } = this.#options;
    const started = this.#timer !== undefined;
    if (this.#timer) {
      clearInterval(this.#timer);
      out.off('resize', this.#onResize);
      if (keys) {
        keys.off('data', this.#onKey);
        keys.setRawMode?.(false);
        keys.pause();
      }
      out.write(LEAVE_SCREEN);
    }
    this.#timer = undefined;
    stderr.write(this.#logLines.map((l) => `${l}\n`).join(''));
    this.#logLines.length = 0;
    // An agent that never started has nothing to sum up: its error follows the log lines.
    if (!started) return;
    const health = this.#health();
    stderr.write(
      `flowtap: ${this.stats.flowsSent} flows, ${health?.packetsSeen ?? 0} packets, ` +
        `${humanBytes(health?.bytesSeen ?? 0)} bytes seen\n`,
    );
  }

  #log(text: string): void {
    for (const json of text.split('\n')) {
      if (json === '') continue;
      const line = humanLogLine(json).trimEnd();
      if (this.#stopped) {
        this.#options.stderr.write(`${line}\n`);
        continue;
      }
      this.#logLines.push(...line.split('\n'));
      if (this.#logLines.length > LOG_LINES_KEPT)
        this.#logLines.splice(0, this.#logLines.length - LOG_LINES_KEPT);
    }
  }

  #key(data: string): void {
    for (const key of data) {
      if (key === 'q' || key === 'Q' || key === '\x03') {
        this.#options.onQuit();
        return;
      }
      if (key === 'p' || key === ' ') this.#paused = !this.#paused;
      else if (key === 's')
        this.#sort = LIVE_SORT_KEYS[(LIVE_SORT_KEYS.indexOf(this.#sort) + 1) % LIVE_SORT_KEYS.length];
      else continue;
      this.draw(true);
    }
  }

  #nowMs(): number {
    return (this.#options.nowMs ?? Date.now)();
  }
}

/** Packets and flows lost so far: ring buffer full, exporter queues full. */
function dropsOf(health: HealthSnapshot | undefined): number {
  let drops = health?.ringBufferLost ?? 0;
  for (const e of health?.exporters ?? []) drops += e['queue-full'];
  return drops;
}
