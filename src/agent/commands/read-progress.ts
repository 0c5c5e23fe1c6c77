/**
 * The progress line of `flowtap read` on stderr: bytes read of the total, packets per second,
 * flows and the time left, redrawn in place. Only on a terminal (a pipe or a file gets nothing)
 * and not with `--quiet`; the line is erased when the read ends, before the summary.
 */

/** What the progress line shows, read at each redraw. */
export interface ReadProgressSnapshot {
  /** Stored bytes read so far (compressed bytes of a compressed file). */
  bytesRead: number;
  /** Stored bytes of all inputs; undefined when unknown (standard input). */
  totalBytes: number | undefined;
  /** Packet records read. */
  packets: number;
  /** Flows counted so far (written and cached). */
  flows: number;
}

/** How often the line is redrawn. */
export const PROGRESS_INTERVAL_MS = 500;
const ERASE_LINE = '\r\x1b[K';
const MIB = 1 << 20;
/** Width assumed for a terminal that reports none (a pseudo-terminal without a size). */
const DEFAULT_COLUMNS = 80;

/** The stream a progress line can be drawn on. */
export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(text: string): boolean;
}

/** True when a progress line goes to `stream`: a terminal, and not silenced by `--quiet`. */
export function wantsProgress(stream: ProgressStream, quiet: boolean): boolean {
  return stream.isTTY === true && !quiet;
}

function formatBytes(bytes: number): string {
  return bytes >= 1024 * MIB ? `${(bytes / (1024 * MIB)).toFixed(2)} GiB` : `${(bytes / MIB).toFixed(1)} MiB`;
}

function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${rest}` : `${m}:${rest}`;
}

/** The text of the line for `p` after `elapsedMs` of reading. */
export function progressLine(p: ReadProgressSnapshot, elapsedMs: number): string {
  const seconds = elapsedMs / 1000;
  const rate = seconds > 0 ? Math.round(p.packets / seconds) : 0;
  let line = `flowtap read: ${formatBytes(p.bytesRead)}`;
  if (p.totalBytes !== undefined && p.totalBytes > 0) {
    line += ` of ${formatBytes(p.totalBytes)} (${Math.floor((100 * p.bytesRead) / p.totalBytes)}%)`;
  }
  line += `, ${rate.toLocaleString('en')} packets/s, ${p.flows.toLocaleString('en')} flows`;
  if (p.totalBytes !== undefined && p.bytesRead > 0 && seconds > 0) {
    line += `, ETA ${formatDuration(((p.totalBytes - p.bytesRead) * seconds) / p.bytesRead)}`;
  }
  return line;
}

/** Draws the progress line every {@link PROGRESS_INTERVAL_MS} from `start()` to `stop()`. */
export class ReadProgress {
  #timer: NodeJS.Timeout | undefined;
  #startedMs = 0;

  constructor(
    private readonly stream: ProgressStream,
    private readonly snapshot: () => ReadProgressSnapshot,
  ) {}

  /** Draws the line now and then at every interval. */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#startedMs = performance.now();
    this.#draw();
    this.#timer = setInterval(() => this.#draw(), PROGRESS_INTERVAL_MS);
    this.#timer.unref();
  }

  /** Stops redrawing and erases the line; idempotent. */
  stop(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.stream.write(ERASE_LINE);
  }

  #draw(): void {
    const line = progressLine(this.snapshot(), performance.now() - this.#startedMs);
    // Longer than the terminal is wide, the line would wrap and no longer be redrawn in place.
    const width = (this.stream.columns || DEFAULT_COLUMNS) - 1;
    this.stream.write(`${ERASE_LINE}${line.length > width ? line.slice(0, width) : line}`);
  }
}
