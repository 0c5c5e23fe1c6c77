/**
 * `watch` discovery: follows rtnetlink link events through a long-lived `ip -o monitor link` child
 * process, and on each event re-lists /sys/class/net to learn what changed.
 *
 * Why a child process: Node has no netlink sockets, and a NETLINK_ROUTE socket through koffi would
 * need a reader thread (a blocking recv would stall the event loop) plus hand-written parsing of
 * nlmsghdr/ifinfomsg/rtattr. `ip monitor` gets the same kernel events with the same latency, and
 * treating each line only as "something changed" (then listing sysfs) means no part of its text
 * format is relied on. The watcher owns the child: it is restarted with backoff if it dies, and
 * killed (and waited for) on stop.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import { NotSupportedError } from '../errors.ts';
import type { InterfaceFilter } from './filter.ts';
import { listInterfaces, SYS_CLASS_NET } from './sysfs.ts';
import { type InterfaceListener, InterfaceTracker } from './tracker.ts';
import type { InterfaceWatcher } from './watcher.ts';

/** First delay before restarting a monitor that died; doubles up to {@link MAX_RESTART_DELAY_MS}. */
export const INITIAL_RESTART_DELAY_MS = 100;
/** Longest delay between restarts of the monitor. */
export const MAX_RESTART_DELAY_MS = 10_000;
/** How long `stop()` waits for the monitor to exit after SIGTERM before SIGKILL. */
const KILL_GRACE_MS = 1_000;
/** How long start waits for the monitor to open its netlink socket. */
const SOCKET_WAIT_MS = 2_000;

/** Settings of a {@link LinkMonitorWatcher}. */
export interface LinkMonitorOptions {
  filter: InterfaceFilter;
  listener: InterfaceListener;
  /** Where interfaces are listed. */
  sysClassNet?: string;
  /** Told when the monitor dies and is restarted, or a listing fails. */
  onWarning?: (message: string, err?: unknown) => void;
}

function hasSocket(pid: number): boolean {
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) return true;
    }
  } catch {
    // the process exited or its fd moved on while listed: the caller's deadline decides
  }
  return false;
}

/** Lists interfaces on every link event; owns one `ip monitor` child process at a time. */
export class LinkMonitorWatcher implements InterfaceWatcher {
  readonly #tracker: InterfaceTracker;
  readonly #root: string;
  #child: ChildProcess | undefined;
  #stopping = false;
  #rescanQueued = false;
  #restartDelayMs = INITIAL_RESTART_DELAY_MS;
  #restartTimer: NodeJS.Timeout | undefined;
  /** A restart in progress; stop() waits for it so no child outlives the watcher. */
  #restarting: Promise<void> | undefined;

  constructor(private readonly options: LinkMonitorOptions) {
    this.#tracker = new InterfaceTracker(options.filter, options.listener);
    this.#root = options.sysClassNet ?? SYS_CLASS_NET;
  }

  async start(): Promise<void> {
    if (this.#child) return;
    await this.#spawnMonitor();
    // Listing after the monitor subscribed: a change during the listing shows up as an event.
    this.#tracker.update(listInterfaces(this.#root, this.options.onWarning));
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#restartTimer);
    await this.#restarting;
    const child = this.#child;
    this.#child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
    child.kill('SIGTERM');
    const killTimer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
    await closed;
    clearTimeout(killTimer);
  }

  current(): ReadonlyMap<string, number> {
    return this.#tracker.current;
  }

  /** Starts `ip -o monitor link` and resolves once it listens; rejects if it cannot run. */
  async #spawnMonitor(): Promise<void> {
    const child = spawn('ip', ['-o', 'monitor', 'link'], { stdio: ['ignore', 'pipe', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (err) => {
        reject(
          new NotSupportedError(
            'ip monitor',
            `cannot run "ip -o monitor link" to watch interfaces (${err.message}): install iproute2, ` +
              'or set LISTEN_INTERFACES=poll',
            { cause: err },
          ),
        );
      });
    });
    this.#child = child;
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (text: string) => {
      stderr = (stderr + text).slice(-512);
    });
    child.stdout?.setEncoding('utf8').on('data', () => {
      this.#restartDelayMs = INITIAL_RESTART_DELAY_MS;
      this.#queueRescan();
    });
    child.on('close', (code, signal) => {
      if (this.#child !== child || this.#stopping) return;
      this.#child = undefined;
      this.#scheduleRestart(`ip monitor exited (code ${code}, signal ${signal}): ${stderr.trim()}`);
    });
    const deadline = Date.now() + SOCKET_WAIT_MS;
    const pid = child.pid ?? 0;
    while (!hasSocket(pid) && Date.now() < deadline && child.exitCode === null) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  #scheduleRestart(reason: string): void {
    const delayMs = this.#restartDelayMs * (0.5 + Math.random() / 2);
    this.#restartDelayMs = Math.min(this.#restartDelayMs * 2, MAX_RESTART_DELAY_MS);
    this.options.onWarning?.(`${reason}; restarting in ${Math.round(delayMs)} ms`);
    this.#restartTimer = setTimeout(() => {
      if (this.#stopping) return;
      this.#restarting = this.#spawnMonitor().then(
        // Events while no monitor ran were missed: a listing catches up on them.
        () => this.#rescan(),
        (err: unknown) => this.#scheduleRestart(`restarting ip monitor failed: ${String(err)}`),
      );
    }, delayMs);
    this.#restartTimer.unref();
  }

  /** Coalesces the lines of one burst of events into one listing. */
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
