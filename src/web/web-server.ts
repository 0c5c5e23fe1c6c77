/**
 * The web view's HTTP server and its routes: the page's files, `/events` (handed to the event
 * streams), `/snapshot.json` (the same snapshot once, for scripts) and `/history.json` (a past
 * window from the flow store, see history.ts). Filters travel in the query
 * and are parsed here (see snapshot.ts for why the server applies them). Bound to loopback, it
 * answers only requests that name a loopback host, so a page elsewhere cannot rebind its own name
 * to 127.0.0.1 and read the flows.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError } from '../errors.ts';
import type { EventStreams } from './event-streams.ts';
import { type HistorySnapshot, type HistoryWindow, parseHistoryWindow } from './history.ts';
import { COMMON_HEADERS, type WebServerStats } from './http-common.ts';
import type { PageAsset } from './page-assets.ts';
import { parseWebFilter, type WebFilter, type WebSnapshot } from './snapshot.ts';

/** Host headers a loopback-bound view accepts. */
const LOOPBACK_HOST = /^(?:localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d+)?$/i;

/** What the routes answer from. */
export interface WebRoutes {
  /** The page's files, by request path. */
  assets: ReadonlyMap<string, PageAsset>;
  streams: EventStreams;
  /** The snapshot a page with `filter` would get now. */
  snapshot(filter: WebFilter): WebSnapshot;
  /** The snapshot of a past window; absent when the view keeps no flow store. */
  history?: (window: HistoryWindow, filter: WebFilter) => Promise<HistorySnapshot>;
  /** Where refused requests are counted. */
  stats: WebServerStats;
}

/** The HTTP side of the web view; see the module comment. */
export class WebServer {
  /** Where the page is, e.g. `http://127.0.0.1:9800/`, once listening (the real port when 0 was asked). */
  url = '';
  readonly #routes: WebRoutes;
  readonly #server: Server;
  /** Listening on loopback only: requests must name a loopback host (DNS rebinding). */
  #loopbackOnly = false;

  constructor(routes: WebRoutes) {
    this.#routes = routes;
    this.#server = createServer((req, res) => this.#handle(req, res));
  }

  /** Listens on `host:port`; throws ConfigError (for `--web`) when it cannot. */
  async listen(host: string, port: number): Promise<void> {
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

  /** Stops listening and drops every connection; resolves once the server is closed. */
  close(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://web-view');
    if (this.#loopbackOnly && !LOOPBACK_HOST.test(req.headers.host ?? '')) {
      // A page elsewhere that rebinds its own name to 127.0.0.1 must not read the flows.
      this.#fail(res, 403, 'this web view answers only to localhost, 127.0.0.1 and [::1]\n');
      return;
    }
    const asset = this.#routes.assets.get(url.pathname === '/index.html' ? '/' : url.pathname);
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
    if (url.pathname !== '/events' && url.pathname !== '/snapshot.json' && url.pathname !== '/history.json') {
      this.#fail(res, 404, 'not found: the page is at /\n');
      return;
    }
    const filter = parseWebFilter(url.searchParams);
    if (typeof filter === 'string') {
      this.#fail(res, 400, `${filter}\n`);
      return;
    }
    if (url.pathname === '/history.json') {
      void this.#history(res, url.searchParams, filter);
      return;
    }
    if (url.pathname === '/snapshot.json') {
      res.writeHead(200, { ...COMMON_HEADERS, 'content-type': 'application/json' });
      res.end(JSON.stringify(this.#routes.snapshot(filter)));
      return;
    }
    this.#routes.streams.open(req, res, filter);
  }

  /** Answers a past window as JSON, or `{ "error": ... }` with 404 (no store), 400 or 503. */
  async #history(res: ServerResponse, params: URLSearchParams, filter: WebFilter): Promise<void> {
    const history = this.#routes.history;
    if (!history) {
      this.#failJson(
        res,
        404,
        'history is off: this web view keeps no flow store (flowtap run without --no-store, or flowtap read --store)',
      );
      return;
    }
    const window = parseHistoryWindow(params);
    if (typeof window === 'string') {
      this.#failJson(res, 400, window);
      return;
    }
    let body: string;
    try {
      body = JSON.stringify(await history(window, filter));
    } catch (err) {
      this.#failJson(res, 503, (err as Error).message);
      return;
    }
    res.writeHead(200, { ...COMMON_HEADERS, 'content-type': 'application/json' });
    res.end(body);
  }

  #failJson(res: ServerResponse, status: number, message: string): void {
    this.#routes.stats.badRequests++;
    res.writeHead(status, { ...COMMON_HEADERS, 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: message }));
  }

  #fail(res: ServerResponse, status: number, message: string): void {
    this.#routes.stats.badRequests++;
    res.writeHead(status, { ...COMMON_HEADERS, 'content-type': 'text/plain; charset=utf-8' }).end(message);
  }
}
