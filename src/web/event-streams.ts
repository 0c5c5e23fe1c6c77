/**
 * The web view's server-sent event streams (`/events`): a new or reconnecting page gets the current
 * snapshot at once, then one snapshot a push whenever the data or the health figures changed.
 * Streams with the same filter share one snapshot per push. Bounds: at most `maxClients` streams
 * (later ones get 503), and a stream whose client does not read is skipped (counted) rather than
 * buffered without limit.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DropReasonSource } from '../model/drop-reasons.ts';
import type { FlowAggregate } from './aggregate.ts';
import type { HealthSnapshot } from './health.ts';
import { COMMON_HEADERS, type WebServerStats } from './http-common.ts';
import { type AddressNames, buildSnapshot, type WebFilter } from './snapshot.ts';

/** A stream with this much unsent data is skipped until its client catches up. */
const MAX_PENDING_BYTES = 1 << 20;
/** A comment line is sent this often on a quiet stream so dead connections are noticed. */
const KEEPALIVE_MS = 15_000;
/** How soon a disconnected page's EventSource retries. */
const RETRY_MS = 1_000;

/** What the streams are built from. */
export interface EventStreamsOptions {
  /** The data every snapshot is taken from. */
  aggregate: FlowAggregate;
  /** Rows per table. */
  topN: number;
  /** Event streams served at once. */
  maxClients: number;
  /** Health figures of a snapshot; undefined when there are none. */
  health: () => HealthSnapshot | undefined;
  /** Where pushes, skips and refusals are counted. */
  stats: WebServerStats;
  /** Whether snapshots tell the page it may ask for past windows. */
  historyAvailable: boolean;
  /** Names of addresses (--resolve). */
  nameOf?: AddressNames;
  /** Names of the kernel's drop reasons, asked only when a row has drops. */
  dropReasons?: DropReasonSource;
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

/** The open event streams; see the module comment. */
export class EventStreams {
  readonly #options: EventStreamsOptions;
  readonly #clients = new Set<EventClient>();
  #closed = false;

  constructor(options: EventStreamsOptions) {
    this.#options = options;
  }

  /** Streams open now. */
  get count(): number {
    return this.#clients.size;
  }

  /** Answers an `/events` request: a stream that starts with the current snapshot, or 503. */
  open(req: IncomingMessage, res: ServerResponse, filter: WebFilter): void {
    const { aggregate, topN, maxClients, stats } = this.#options;
    if (this.#closed) {
      res.writeHead(503, COMMON_HEADERS).end();
      return;
    }
    if (this.#clients.size >= maxClients) {
      stats.refusedClients++;
      res
        .writeHead(503, { ...COMMON_HEADERS, 'content-type': 'text/plain; charset=utf-8' })
        .end(`${maxClients} viewers are connected already\n`);
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
    aggregate.tick();
    const health = this.#options.health();
    this.#send(
      client,
      JSON.stringify(
        buildSnapshot(
          aggregate,
          filter,
          topN,
          health,
          this.#options.historyAvailable,
          this.#options.nameOf,
          this.#options.dropReasons,
        ),
      ),
      healthKey(health),
    );
  }

  /** One push period: slide the window, then send each stream its snapshot if anything changed. */
  push(): void {
    const { aggregate, topN, stats } = this.#options;
    aggregate.tick();
    if (this.#clients.size === 0) return;
    const health = this.#options.health();
    const key = healthKey(health);
    const version = aggregate.version;
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
        stats.skippedSlowClient++;
        continue;
      }
      let json = byFilter.get(client.filterKey);
      if (json === undefined) {
        json = JSON.stringify(
          buildSnapshot(
            aggregate,
            client.filter,
            topN,
            health,
            this.#options.historyAvailable,
            this.#options.nameOf,
            this.#options.dropReasons,
          ),
        );
        byFilter.set(client.filterKey, json);
      }
      this.#send(client, json, key);
    }
  }

  /** Ends every stream; later requests get 503. */
  close(): void {
    this.#closed = true;
    for (const client of this.#clients) client.res.end();
    this.#clients.clear();
  }

  #send(client: EventClient, json: string, key: string): void {
    client.res.write(`data: ${json}\n\n`);
    client.sentVersion = this.#options.aggregate.version;
    client.sentHealthKey = key;
    client.lastWriteMs = Date.now();
    this.#options.stats.pushes++;
  }
}

/** Health without its clock, so the passing of time alone does not count as a change. */
function healthKey(health: HealthSnapshot | undefined): string {
  return health ? JSON.stringify({ ...health, uptimeSeconds: undefined }) : '';
}
