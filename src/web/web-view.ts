/**
 * The live web view, put together from its parts: the aggregate sink the pipeline feeds
 * (aggregate-sink.ts), the HTTP server and routes (web-server.ts), the server-sent event streams
 * (event-streams.ts) and the static page (page-assets.ts). As a whole it is a flow sink named
 * `web`: evicted batches go into a bounded FlowAggregate, and every page sees snapshots of it.
 * Given a flow store, it also answers past windows of it (history.ts), one at a time: each opens
 * its own DuckDB instance, which a burst of requests must not multiply.
 */
import type { RecordBatch } from '../codec/record-batch.ts';
import { StoreError } from '../errors.ts';
import type { DropReasonSource } from '../model/drop-reasons.ts';
import type { FlowSink, SinkStats } from '../sink/flow-sink.ts';
import type { StoreQueries } from '../store/store-reader.ts';
import { FlowAggregate, type FlowAggregateOptions, type Timeline } from './aggregate.ts';
import { AggregateSink } from './aggregate-sink.ts';
import { EventStreams } from './event-streams.ts';
import type { HealthProvider, HealthSnapshot } from './health.ts';
import { type HistorySnapshot, type HistoryWindow, historySnapshot } from './history.ts';
import type { WebServerStats } from './http-common.ts';
import { loadPageAssets, type PageAsset } from './page-assets.ts';
import { type AddressNames, buildSnapshot, NO_FILTER, type WebFilter, type WebSnapshot } from './snapshot.ts';
import { WebServer } from './web-server.ts';

/** What the web view logs through (a pino logger fits). */
export interface WebViewLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

/** Settings of {@link startWebView}. */
export interface WebViewOptions {
  /** Address to listen on; loopback by default in the CLI since the page is unauthenticated. */
  host: string;
  /** Port; 0 picks a free one (see `url`). */
  port: number;
  /** `wall` for live capture, `records` for a capture file's own timeline. */
  timeline: Timeline;
  /** Agent figures shown in the health panel. */
  health?: HealthProvider;
  logger?: WebViewLogger;
  /** Bounds and clock of the aggregate (defaults in aggregate.ts). */
  aggregate?: Omit<FlowAggregateOptions, 'timeline'>;
  /** Rows per table. */
  topN?: number;
  /** Time between pushes of a changed snapshot. */
  pushIntervalMs?: number;
  /** Event streams served at once. */
  maxClients?: number;
  /** How past windows are read from the flow store; without it the page offers only live. */
  store?: StoreQueries;
  /** Names of addresses shown beside them (--resolve). */
  nameOf?: AddressNames;
  /** Names of the kernel's drop reasons (the running kernel's BTF), asked only when a row has drops. */
  dropReasons?: DropReasonSource;
}

/** Default rows per table. */
export const DEFAULT_TOP_N = 50;
/** Default push period: at most one snapshot a second per stream. */
export const DEFAULT_PUSH_INTERVAL_MS = 1_000;
/** Default bound on event streams. */
export const DEFAULT_MAX_CLIENTS = 32;

/** The running web view; see the module comment. Create it with {@link startWebView}. */
export class WebView implements FlowSink {
  /** Counters of the HTTP side. */
  readonly serverStats: WebServerStats = {
    pushes: 0,
    skippedSlowClient: 0,
    refusedClients: 0,
    badRequests: 0,
  };
  readonly aggregate: FlowAggregate;
  readonly #options: WebViewOptions;
  readonly #sink: AggregateSink;
  readonly #streams: EventStreams;
  readonly #server: WebServer;
  readonly #topN: number;
  #timer: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;
  #healthFailing = false;
  /** The history request running (or last run); the next one waits for it. */
  #historyQueue: Promise<unknown> = Promise.resolve();
  readonly #closed: Promise<void>;
  #settleClosed: () => void = () => {};

  private constructor(options: WebViewOptions, assets: ReadonlyMap<string, PageAsset>) {
    this.#options = options;
    this.#topN = options.topN ?? DEFAULT_TOP_N;
    this.aggregate = new FlowAggregate({ ...options.aggregate, timeline: options.timeline });
    this.#sink = new AggregateSink(this.aggregate);
    this.#streams = new EventStreams({
      aggregate: this.aggregate,
      topN: this.#topN,
      maxClients: options.maxClients ?? DEFAULT_MAX_CLIENTS,
      health: () => this.#health(),
      stats: this.serverStats,
      historyAvailable: options.store !== undefined,
      nameOf: options.nameOf,
      dropReasons: options.dropReasons,
    });
    this.#server = new WebServer({
      assets,
      streams: this.#streams,
      snapshot: (filter) => this.snapshot(filter),
      history: options.store === undefined ? undefined : (window, filter) => this.history(window, filter),
      stats: this.serverStats,
    });
    this.#closed = new Promise((resolve) => {
      this.#settleClosed = resolve;
    });
  }

  /** Loads the page and listens; see {@link startWebView}. */
  static async start(options: WebViewOptions): Promise<WebView> {
    const view = new WebView(options, await loadPageAssets());
    await view.#server.listen(options.host, options.port);
    view.#timer = setInterval(() => view.#streams.push(), options.pushIntervalMs ?? DEFAULT_PUSH_INTERVAL_MS);
    // The server keeps the process alive while it listens; the push timer need not.
    view.#timer.unref();
    options.logger?.info({ url: view.url }, 'web view listening');
    return view;
  }

  /** As a sink: `web`. */
  get name(): string {
    return this.#sink.name;
  }

  /** As a sink: batches and flows taken, and flows refused after close. */
  get stats(): Readonly<SinkStats> {
    return this.#sink.stats;
  }

  /** Where the page is, e.g. `http://127.0.0.1:9800/` (the real port when 0 was asked). */
  get url(): string {
    return this.#server.url;
  }

  /** Event streams open now. */
  get clients(): number {
    return this.#streams.count;
  }

  /** Aggregates `batch` at once (synchronous, bounded); false only after the view was closed. */
  export(batch: RecordBatch): boolean {
    return this.#sink.export(batch);
  }

  /** The snapshot a page with `filter` would get now. */
  snapshot(filter: WebFilter = NO_FILTER): WebSnapshot {
    this.aggregate.tick();
    return buildSnapshot(
      this.aggregate,
      filter,
      this.#topN,
      this.#health(),
      this.#options.store !== undefined,
      this.#options.nameOf,
      this.#options.dropReasons,
    );
  }

  /** The snapshot of a past window of the flow store; StoreError when there is none or it fails. */
  history(window: HistoryWindow, filter: WebFilter = NO_FILTER): Promise<HistorySnapshot> {
    const store = this.#options.store;
    if (store === undefined) {
      return Promise.reject(new StoreError('', 'history is off: this web view keeps no flow store'));
    }
    const run = this.#historyQueue.then(() =>
      historySnapshot(store, window, filter, this.#topN, this.#health(), this.#options.dropReasons),
    );
    this.#historyQueue = run.catch(() => undefined);
    return run;
  }

  /** As a sink: stopping closes the server (there is nothing queued to flush). */
  stop(): Promise<void> {
    return this.close();
  }

  /** Ends every event stream and closes the server (idempotent). */
  close(): Promise<void> {
    if (!this.#closing) {
      clearInterval(this.#timer);
      this.#streams.close();
      this.#sink.close();
      this.#closing = this.#server.close().then(() => this.#settleClosed());
    }
    return this.#closing;
  }

  /** Resolves once the view is closed, by `close()`, `stop()` or a signal (serveUntilSignal). */
  closed(): Promise<void> {
    return this.#closed;
  }

  #health(): HealthSnapshot | undefined {
    const provider = this.#options.health;
    if (!provider) return undefined;
    try {
      const health = provider();
      this.#healthFailing = false;
      return health;
    } catch (err) {
      // Logged once per failing spell, not once a second; the page shows no health meanwhile.
      if (!this.#healthFailing) this.#options.logger?.warn({ err }, 'web view: the health provider failed');
      this.#healthFailing = true;
      return undefined;
    }
  }
}

/**
 * Loads the page, listens on `host:port` and returns the running view; feed it as a flow sink.
 * Throws ConfigError when it cannot listen there, InputError when the page files are missing.
 */
export function startWebView(options: WebViewOptions): Promise<WebView> {
  return WebView.start(options);
}

/**
 * Keeps `view` serving until SIGINT or SIGTERM, then closes it; resolves once it is closed (also
 * when it is closed another way). A second signal meets Node's default handling and ends the process.
 */
export async function serveUntilSignal(view: WebView): Promise<void> {
  const onSignal = () => {
    void view.close();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await view.closed();
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
