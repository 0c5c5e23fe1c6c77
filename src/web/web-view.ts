/**
 * The live web view: a flow sink named `web` that aggregates evicted batches (FlowAggregate), and
 * the HTTP server of its page. The page (web/index.html, app.js, style.css, and uPlot from its
 * package) is read once at start and served from memory, so it works offline and nothing is built
 * at run time. `/events` is a server-sent event stream: a new or reconnecting page gets the
 * current snapshot at once, then one snapshot a push interval (1 s) whenever the data or the
 * health figures changed. Filters travel in the stream's query and are applied on the server (see
 * snapshot.ts for why); `/snapshot.json` answers the same snapshot once, for scripts.
 *
 * Bounds: at most `maxClients` streams (later ones get 503), a stream whose client does not read
 * is skipped (counted) rather than buffered without limit, and the aggregate is bounded itself.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import type { RecordBatch } from '../codec/record-batch.ts';
import { ConfigError, InputError } from '../errors.ts';
import { packagePath } from '../package-files.ts';
import { emptySinkStats, type FlowSink, type SinkStats } from '../sink/flow-sink.ts';
import { FlowAggregate, type FlowAggregateOptions, type Timeline } from './aggregate.ts';
import type { HealthProvider, HealthSnapshot } from './health.ts';
import { buildSnapshot, NO_FILTER, parseWebFilter, type WebFilter, type WebSnapshot } from './snapshot.ts';

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
}

/** Default rows per table. */
export const DEFAULT_TOP_N = 50;
/** Default push period: at most one snapshot a second per stream. */
export const DEFAULT_PUSH_INTERVAL_MS = 1_000;
/** Default bound on event streams. */
export const DEFAULT_MAX_CLIENTS = 32;
/** A stream with this much unsent data is skipped until its client catches up. */
const MAX_PENDING_BYTES = 1 << 20;
/** A comment line is sent this often on a quiet stream so dead connections are noticed. */
const KEEPALIVE_MS = 15_000;
/** Host headers a loopback-bound view accepts. */
const LOOPBACK_HOST = /^(?:localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d+)?$/i;
/** How soon a disconnected page's EventSource retries. */
const RETRY_MS = 1_000;

const require = createRequire(import.meta.url);

/** Request path → shipped file and its content type. */
const ASSET_FILES: ReadonlyArray<[string, () => string, string]> = [
  ['/', () => packagePath('web', 'index.html'), 'text/html; charset=utf-8'],
  ['/app.js', () => packagePath('web', 'app.js'), 'text/javascript; charset=utf-8'],
  ['/style.css', () => packagePath('web', 'style.css'), 'text/css; charset=utf-8'],
  [
    '/vendor/uPlot.iife.min.js',
    () => require.resolve('uplot/dist/uPlot.iife.min.js'),
    'text/javascript; charset=utf-8',
  ],
  ['/vendor/uPlot.min.css', () => require.resolve('uplot/dist/uPlot.min.css'), 'text/css; charset=utf-8'],
];

const COMMON_HEADERS = {
  'cache-control': 'no-cache',
  'x-content-type-options': 'nosniff',
  // uPlot sizes its elements through inline styles; scripts come only from this server.
  'content-security-policy': "default-src 'self'; style-src 'self' 'unsafe-inline'",
};

interface Asset {
  body: Buffer;
  type: string;
}

async function loadAssets(): Promise<Map<string, Asset>> {
  const assets = new Map<string, Asset>();
  for (const [path, file, type] of ASSET_FILES) {
    let location = '';
    try {
      location = file();
      assets.set(path, { body: await readFile(location), type });
    } catch (err) {
      throw new InputError(
        `the web view cannot read its page file ${location || path} (${(err as Error).message}); ` +
          'reinstall flowtap with its web/ folder and the uplot package',
        { cause: err },
      );
    }
  }
  return assets;
}

/** One open event stream. */
interface EventClient {
  readonly res: ServerResponse;
  readonly filter: WebFilter;
  /** Streams with the same key share one snapshot per push. */
  readonly filterKey: string;
  sentVersion: number;
  sentHealthKey: string;
  lastWriteMs: number;
}

/** Counters of the server side, shown with the snapshot's own. */
export interface WebServerStats {
  /** Snapshots written to event streams. */
  pushes: number;
  /** Pushes skipped because a client had not read the previous ones. */
  skippedSlowClient: number;
  /** Streams refused because `maxClients` were open. */
  refusedClients: number;
  /** Requests answered 400 (bad filter) or 404/405. */
  badRequests: number;
}

/** The running web view; see the module comment. Create it with {@link startWebView}. */
export class WebView implements FlowSink {
  readonly name = 'web';
  readonly stats: SinkStats = emptySinkStats();
  /** Counters of the HTTP side. */
  readonly serverStats: WebServerStats = {
    pushes: 0,
    skippedSlowClient: 0,
    refusedClients: 0,
    badRequests: 0,
  };
  readonly aggregate: FlowAggregate;
  /** Where the page is, e.g. `http://127.0.0.1:9800/` (the real port when 0 was asked). */
  url = '';
  readonly #options: WebViewOptions;
  readonly #assets: Map<string, Asset>;
  readonly #server: Server;
  readonly #clients = new Set<EventClient>();
  readonly #topN: number;
  readonly #maxClients: number;
  #timer: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;
  #healthFailing = false;
  /** Listening on loopback only: requests must name a loopback host (DNS rebinding). */
  #loopbackOnly = false;
  readonly #closed: Promise<void>;
  #settleClosed: () => void = () => {};

  private constructor(options: WebViewOptions, assets: Map<string, Asset>) {
    this.#options = options;
    this.#assets = assets;
    this.#topN = options.topN ?? DEFAULT_TOP_N;
    this.#maxClients = options.maxClients ?? DEFAULT_MAX_CLIENTS;
    this.aggregate = new FlowAggregate({ ...options.aggregate, timeline: options.timeline });
    this.#server = createServer((req, res) => this.#handle(req, res));
    this.#closed = new Promise((resolve) => {
      this.#settleClosed = resolve;
    });
  }

  /** Loads the page and listens; see {@link startWebView}. */
  static async start(options: WebViewOptions): Promise<WebView> {
    const view = new WebView(options, await loadAssets());
    await view.#listen();
    view.#timer = setInterval(() => view.#push(), options.pushIntervalMs ?? DEFAULT_PUSH_INTERVAL_MS);
    // The server keeps the process alive while it listens; the push timer need not.
    view.#timer.unref();
    options.logger?.info({ url: view.url }, 'web view listening');
    return view;
  }

  /** Event streams open now. */
  get clients(): number {
    return this.#clients.size;
  }

  /** Aggregates `batch` at once (synchronous, bounded); false only after the view was closed. */
  export(batch: RecordBatch): boolean {
    if (this.#closing) {
      this.stats.flowsDropped.stopped += batch.count;
      return false;
    }
    this.aggregate.add(batch);
    this.stats.batchesSent++;
    this.stats.flowsSent += batch.count;
    return true;
  }

  /** The snapshot a page with `filter` would get now. */
  snapshot(filter: WebFilter = NO_FILTER): WebSnapshot {
    this.aggregate.tick();
    return buildSnapshot(this.aggregate, filter, this.#topN, this.#health());
  }

  /** As a sink: stopping closes the server (there is nothing queued to flush). */
  stop(): Promise<void> {
    return this.close();
  }

  /** Ends every event stream and closes the server (idempotent). */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      clearInterval(this.#timer);
      for (const client of this.#clients) client.res.end();
      this.#clients.clear();
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    }).then(() => this.#settleClosed());
    return this.#closing;
  }

  /** Resolves once the view is closed, by `close()`, `stop()` or a signal (serveUntilSignal). */
  closed(): Promise<void> {
    return this.#closed;
  }

  async #listen(): Promise<void> {
    const { host, port } = this.#options;
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          new ConfigError(
            '--web',
            `${host}:${port}`,
            `an address this host can listen on (${err.code ?? err.message})`,
          ),
        ),
      );
      this.#server.listen(port, host, () => resolve());
    });
    const bound = this.#server.address() as AddressInfo;
    this.#loopbackOnly = bound.address === '::1' || bound.address.startsWith('127.');
    const shownHost = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
    this.url = `http://${shownHost}:${bound.port}/`;
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://web-view');
    if (this.#loopbackOnly && !LOOPBACK_HOST.test(req.headers.host ?? '')) {
      // A page elsewhere that rebinds its own name to 127.0.0.1 must not read the flows.
      this.#fail(res, 403, 'this web view answers only to localhost, 127.0.0.1 and [::1]\n');
      return;
    }
    const asset = this.#assets.get(url.pathname === '/index.html' ? '/' : url.pathname);
    if (req.method !== 'GET' && !(req.method === 'HEAD' && asset)) {
      this.#fail(res, 405, 'only GET is served here\n');
      return;
    }
    if (asset) {
      res.writeHead(200, {
        ...COMMON_HEADERS,
        'content-type': asset.type,
        'content-length': asset.body.length,
      });
      res.end(req.method === 'HEAD' ? undefined : asset.body);
      return;
    }
    if (url.pathname !== '/events' && url.pathname !== '/snapshot.json') {
      this.#fail(res, 404, 'not found: the page is at /\n');
      return;
    }
    const filter = parseWebFilter(url.searchParams);
    if (typeof filter === 'string') {
      this.#fail(res, 400, `${filter}\n`);
      return;
    }
    if (url.pathname === '/snapshot.json') {
      res.writeHead(200, { ...COMMON_HEADERS, 'content-type': 'application/json' });
      res.end(JSON.stringify(this.snapshot(filter)));
      return;
    }
    this.#openStream(req, res, filter);
  }

  #fail(res: ServerResponse, status: number, message: string): void {
    this.serverStats.badRequests++;
    res.writeHead(status, { ...COMMON_HEADERS, 'content-type': 'text/plain; charset=utf-8' }).end(message);
  }

  #openStream(req: IncomingMessage, res: ServerResponse, filter: WebFilter): void {
    if (this.#closing) {
      res.writeHead(503, COMMON_HEADERS).end();
      return;
    }
    if (this.#clients.size >= this.#maxClients) {
      this.serverStats.refusedClients++;
      res
        .writeHead(503, { ...COMMON_HEADERS, 'content-type': 'text/plain; charset=utf-8' })
        .end(`${this.#maxClients} viewers are connected already\n`);
      return;
    }
    res.writeHead(200, { ...COMMON_HEADERS, 'content-type': 'text/event-stream', connection: 'keep-alive' });
    res.write(`retry: ${RETRY_MS}\n\n`);
    const client: EventClient = {
      res,
      filter,
      filterKey: JSON.stringify(filter),
      sentVersion: -1,
      sentHealthKey: '',
      lastWriteMs: Date.now(),
    };
    this.#clients.add(client);
    req.socket.setNoDelay(true);
    res.on('close', () => this.#clients.delete(client));
    res.on('error', () => this.#clients.delete(client));
    // A page that connects or reconnects sees the current state at once, not after a push period.
    this.aggregate.tick();
    const health = this.#health();
    this.#send(
      client,
      JSON.stringify(buildSnapshot(this.aggregate, filter, this.#topN, health)),
      healthKey(health),
    );
  }

  /** One push period: slide the window, then send each stream its snapshot if anything changed. */
  #push(): void {
    this.aggregate.tick();
    if (this.#clients.size === 0) return;
    const health = this.#health();
    const key = healthKey(health);
    const version = this.aggregate.version;
    const nowMs = Date.now();
    const byFilter = new Map<string, string>();
    for (const client of this.#clients) {
      if (client.sentVersion === version && client.sentHealthKey === key) {
        if (nowMs - client.lastWriteMs >= KEEPALIVE_MS) {
          client.res.write(': keep-alive\n\n');
          client.lastWriteMs = nowMs;
        }
        continue;
      }
      if (client.res.writableLength > MAX_PENDING_BYTES) {
        this.serverStats.skippedSlowClient++;
        continue;
      }
      let json = byFilter.get(client.filterKey);
      if (json === undefined) {
        json = JSON.stringify(buildSnapshot(this.aggregate, client.filter, this.#topN, health));
        byFilter.set(client.filterKey, json);
      }
      this.#send(client, json, key);
    }
  }

  #send(client: EventClient, json: string, key: string): void {
    client.res.write(`data: ${json}\n\n`);
    client.sentVersion = this.aggregate.version;
    client.sentHealthKey = key;
    client.lastWriteMs = Date.now();
    this.serverStats.pushes++;
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

/** Health without its clock, so the passing of time alone does not count as a change. */
function healthKey(health: HealthSnapshot | undefined): string {
  return health ? JSON.stringify({ ...health, uptimeSeconds: undefined }) : '';
}

/**
 * Loads the page, listens on `host:port` and returns the running view; feed it as an exporter.
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
