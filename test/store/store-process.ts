/** Starts and watches the store writer process of the multi-process tests. */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import type { TestContext } from 'node:test';

const WRITER = new URL('./store-writer.ts', import.meta.url).pathname;

/** A running writer and the flows it has committed so far. */
export interface StoreWriterProcess {
  child: ChildProcessWithoutNullStreams;
  /** Flows committed, as the writer last reported. */
  committed(): number;
  /** Resolves once at least `flows` are committed (or `done` was printed). */
  until(flows: number | 'done'): Promise<void>;
}

/** Starts a writer of `batches` × `flowsPerBatch` flows into `file`; killed (by pid) after the test. */
export function startStoreWriter(
  t: TestContext,
  file: string,
  batches: number,
  flowsPerBatch: number,
): StoreWriterProcess {
  const child = spawn(process.execPath, [
    '--import',
    'tsx',
    WRITER,
    file,
    String(batches),
    String(flowsPerBatch),
  ]);
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let committed = 0;
  let done = false;
  let stderr = '';
  let rest = '';
  const waiters = new Set<() => void>();
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (rest + chunk).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) {
      if (line === 'done') done = true;
      const m = /^committed (\d+)$/.exec(line);
      if (m) committed = Number(m[1]);
    }
    for (const wake of waiters) wake();
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  return {
    child,
    committed: () => committed,
    until: (flows) =>
      new Promise((resolve, reject) => {
        const check = () => {
          if (done || (flows !== 'done' && committed >= flows)) {
            waiters.delete(check);
            resolve();
          }
        };
        waiters.add(check);
        child.once('exit', (code) => reject(new Error(`writer exited (${code}) before ${flows}: ${stderr}`)));
        check();
      }),
  };
}
