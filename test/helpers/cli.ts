/** Runs the flowtap CLI from source in a child process, for end-to-end tests. */
import { spawn } from 'node:child_process';

const CLI = new URL('../../src/cli.ts', import.meta.url).pathname;

/** What a finished CLI run printed and how it exited. */
export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `flowtap ...args` to completion, feeding `stdin` when given. With `timeoutMs`, a run that
 * has not ended by then is killed and reported with `code` null, so a hang fails the test
 * instead of stalling the suite.
 */
export function runCli(
  args: string[],
  options: { stdin?: Buffer; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: options.timeoutMs,
      killSignal: 'SIGKILL',
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.stdin ?? Buffer.alloc(0));
  });
}
