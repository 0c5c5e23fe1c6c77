/**
 * tcpdump for the capture tests: started in packet-buffered mode (`-U`, so the file holds every
 * packet as it is seen) and returned once it listens, stopped with SIGINT so it writes out what it
 * holds, killed at the end of a test that failed before stopping it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';

/** Longest wait for tcpdump to say it listens: past this it is stuck, and the test says so. */
const LISTEN_LIMIT_MS = 30_000;

/** Starts `tcpdump -U -n ...args` and resolves once it listens (rejects if it exits first). */
export async function startTcpdump(args: readonly string[]): Promise<ChildProcess> {
  const child = spawn('tcpdump', ['-U', '-n', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`tcpdump did not listen: ${stderr}`)), LISTEN_LIMIT_MS);
      child.stderr?.setEncoding('utf8').on('data', (d: string) => {
        stderr += d;
        if (stderr.includes('listening on')) resolve();
      });
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`tcpdump exited with ${code}: ${stderr}`)));
    });
  } catch (err) {
    killTcpdump(child);
    throw err;
  } finally {
    clearTimeout(timer);
  }
  return child;
}

/** Stops tcpdump with SIGINT, as a user's Ctrl-C, so it flushes its file; resolves once it exited. */
export async function stopTcpdump(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGINT');
  await exited;
}

/** Kills tcpdump if it still runs: for `after` hooks of tests that may fail before stopping it. */
export function killTcpdump(child: ChildProcess | undefined): void {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}
