/**
 * `watch` discovery: subscribes to rtnetlink link events (RTMGRP_LINK) and, on each burst of
 * events, re-lists /sys/class/net to learn what changed. No event is parsed: each only says
 * "something changed", and the listing says what.
 *
 * The socket is opened and subscribed on the main thread before the first listing, so a change
 * during that listing shows up as an event. Waiting for events happens on a worker thread blocked
 * in poll() (src/ifaces/link-events-worker.ts): Node cannot watch a netlink socket itself, and a
 * blocking call on libuv's thread pool would take one of its four threads for good. The watcher
 * owns the socket, the wake-up pipe and the worker: a worker that fails is restarted with backoff,
 * and stop() wakes it, waits for it to end and closes both descriptors.
 */
import { Worker } from 'node:worker_threads';
import { closeFd, openRouteSocket, openWakePipe, RTMGRP_LINK, wake } from '../netlink/socket.ts';
import type { InterfaceFilter } from './filter.ts';
import type { LinkEventsMessage, LinkEventsWorkerData } from './link-events-worker.ts';
import { listInterfaces, SYS_CLASS_NET } from './sysfs.ts';
import { type InterfaceListener, InterfaceTracker } from './tracker.ts';
import type { InterfaceWatcher } from './watcher.ts';

/** First delay before restarting a subscription that failed; doubles up to {@link MAX_RESTART_DELAY_MS}. */
export const INITIAL_RESTART_DELAY_MS = 100;
/** Longest delay between restarts of the subscription. */
export const MAX_RESTART_DELAY_MS = 10_000;

const RUNNING_FROM_SOURCE = import.meta.url.endsWith('.ts');
/** The worker's module beside this one (.js when built, .ts when run from source under tsx). */
const WORKER_URL = new URL(`./link-events-worker${RUNNING_FROM_SOURCE ? '.ts' : '.js'}`, import.meta.url);

/**
 * Starts the link-event worker. Built, it is a plain module. From source (tests, `npm run dev`)
 * Node 20 does not carry tsx's `--import` hooks into workers, so a two-line bootstrap registers
 * tsx inside the worker before importing it.
 */
function startWorker(workerData: LinkEventsWorkerData): Worker {
  if (!RUNNING_FROM_SOURCE) return new Worker(WORKER_URL, { workerData });
  const tsx = JSON.stringify(import.meta.resolve('tsx/esm/api'));
  const bootstrap = `import(${tsx}).then(({ register }) => { register(); return import(${JSON.stringify(WORKER_URL.href)}); });`;
  return new Worker(bootstrap, { eval: true, workerData });
}

/** Settings of a {@link LinkMonitorWatcher}. */
export interface LinkMonitorOptions {
  filter: InterfaceFilter;
  listener: InterfaceListener;
  /** Where interfaces are listed. */
  sysClassNet?: string;
  /** Told when the subscription fails and is restarted, or a listing fails or skips interfaces. */
  onWarning?: (message: string, err?: unknown) => void;
}

/** One subscription: the socket, the pipe that wakes the worker, the worker. */
interface Subscription {
  socketFd: number;
  wakeReadFd: number;
  wakeWriteFd: number;
  worker: Worker;
  exited: Promise<void>;
}

/** Lists interfaces on every link event; owns one netlink subscription at a time. */
export class LinkMonitorWatcher implements InterfaceWatcher {
  readonly #tracker: InterfaceTracker;
  readonly #root: string;
  #subscription: Subscription | undefined;
  #stopping = false;
  #rescanQueued = false;
  #restartDelayMs = INITIAL_RESTART_DELAY_MS;
  #restartTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: LinkMonitorOptions) {
    this.#tracker = new InterfaceTracker(options.filter, options.listener);
    this.#root = options.sysClassNet ?? SYS_CLASS_NET;
  }

  async start(): Promise<void> {
    if (this.#subscription) return;
    this.#subscribe();
    // Listing after subscribing: a change during the listing shows up as an event.
    this.#tracker.update(listInterfaces(this.#root, this.options.onWarning));
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#restartTimer);
    const subscription = this.#subscription;
    this.#subscription = undefined;
    if (subscription) await this.#release(subscription);
  }

  current(): ReadonlyMap<string, number> {
    return this.#tracker.current;
  }

  /** Opens the socket (subscribed when this returns) and starts the worker waiting on it. */
  #subscribe(): void {
    const socketFd = openRouteSocket(RTMGRP_LINK);
    let wakeFds: [number, number];
    try {
      wakeFds = openWakePipe();
    } catch (err) {
      closeFd(socketFd);
      throw err;
    }
    const [wakeReadFd, wakeWriteFd] = wakeFds;
    const workerData: LinkEventsWorkerData = { socketFd, wakeFd: wakeReadFd };
    const worker = startWorker(workerData);
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    const subscription: Subscription = { socketFd, wakeReadFd, wakeWriteFd, worker, exited };
    this.#subscription = subscription;
    worker.on('message', (message: LinkEventsMessage) => {
      if ('error' in message) {
        this.#fail(subscription, `watching link events failed: ${message.error}`);
        return;
      }
      this.#restartDelayMs = INITIAL_RESTART_DELAY_MS;
      this.#queueRescan();
    });
    worker.on('error', (err) => this.#fail(subscription, `the link event worker failed: ${err.message}`));
    worker.on('exit', (code) => this.#fail(subscription, `the link event worker ended (code ${code})`));
  }

  /** Wakes the worker, waits for it to end, then closes what it used. */
  async #release(subscription: Subscription): Promise<void> {
    wake(subscription.wakeWriteFd);
    await subscription.exited;
    closeFd(subscription.socketFd);
    closeFd(subscription.wakeReadFd);
    closeFd(subscription.wakeWriteFd);
  }

  #fail(subscription: Subscription, reason: string): void {
    if (this.#subscription !== subscription || this.#stopping) return;
    this.#subscription = undefined;
    this.#scheduleRestart(reason, this.#release(subscription));
  }

  #scheduleRestart(reason: string, released: Promise<void>): void {
    const delayMs = this.#restartDelayMs * (0.5 + Math.random() / 2);
    this.#restartDelayMs = Math.min(this.#restartDelayMs * 2, MAX_RESTART_DELAY_MS);
    this.options.onWarning?.(`${reason}; restarting in ${Math.round(delayMs)} ms`);
    this.#restartTimer = setTimeout(async () => {
      await released;
      if (this.#stopping) return;
      try {
        this.#subscribe();
      } catch (err) {
        this.#scheduleRestart(
          `subscribing to link events failed: ${(err as Error).message}`,
          Promise.resolve(),
        );
        return;
      }
      // Events while no subscription ran were missed: a listing catches up on them.
      this.#rescan();
    }, delayMs);
    this.#restartTimer.unref();
  }

  /** Coalesces one burst of events into one listing. */
  #queueRescan(): void {
    if (this.#rescanQueued) return;
    this.#rescanQueued = true;
    setImmediate(() => {
      this.#rescanQueued = false;
      this.#rescan();
    });
  }

  #rescan(): void {
    if (this.#stopping) return;
    try {
      this.#tracker.update(listInterfaces(this.#root, this.options.onWarning));
    } catch (err) {
      this.options.onWarning?.(`listing interfaces in ${this.#root} failed`, err);
    }
  }
}
