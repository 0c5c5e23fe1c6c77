/**
 * `flowtap collect` as a child process for the collector's tests: its stderr log lines parsed as
 * they come (pino JSON), waits on them, and kill by pid in `t.after`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';

type TestContext = { after: (fn: () => unknown) => void };
const CLI = new URL('../../src/cli.ts', import.meta.url).pathname;
const WAIT_TIMEOUT_MS = 60_000;

/** A running `flowtap collect`. */
export interface CollectorProcess {
  readonly child: ChildProcess;
  /** Log lines so far, parsed. */
  readonly logs: Record<string, unknown>[];
  /** Stdout so far. */
  stdout(): string;
  /** Resolves with the first log line (from the start) `match` accepts. */
  waitForLog(
    match: (line: Record<string, unknown>) => boolean,
    what: string,
  ): Promise<Record<string, unknown>>;
  /** Resolves with the exit code once the process ended. */
  exited(): Promise<number | null>;
}

/** Starts `flowtap collect ...args` with `env` added to this process's. */
export function startCollectorProcess(
  t: TestContext,
  args: string[],
  env: Record<string, string> = {},
): CollectorProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'collect', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const exit = once(child, 'exit').then(([code]) => code as number | null);
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      process.kill(child.pid, 'SIGKILL');
      await exit;
    }
  });
  const logs: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  let partial = '';
  let raw = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    raw = (raw + d).slice(-8192);
    partial += d;
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ msg: line });
      }
    }
    for (const wake of waiters) wake();
  });
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  child.on('exit', () => {
    for (const wake of waiters) wake();
  });
  return {
    child,
    logs,
    stdout: () => out,
    exited: () => exit,
    waitForLog(match, what) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`collector never logged ${what}: ${raw}`));
        }, WAIT_TIMEOUT_MS);
        const check = () => {
          const found = logs.find(match);
          if (found) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve(found);
          } else if (child.exitCode !== null || child.signalCode !== null) {
            clearTimeout(timer);
            waiters.delete(check);
            reject(new Error(`collector exited before logging ${what}: ${raw}`));
          }
        };
        waiters.add(check);
        check();
      });
    },
  };
}
