/**
 * Starts a librdkafka mock cluster (kafka-mock-cluster-process.ts) with topics of chosen partition
 * counts, for the collector's consumer-group tests; killed by pid after the test.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';

type TestContext = { after: (fn: () => unknown) => void };
const PROCESS = new URL('./kafka-mock-cluster-process.ts', import.meta.url).pathname;
const START_TIMEOUT_MS = 15_000;

/** A running mock cluster. */
export interface MockCluster {
  readonly brokers: string[];
}

/** Starts 3 mock brokers holding `topics` (name → partitions). */
export async function startMockCluster(t: TestContext, topics: Record<string, number>): Promise<MockCluster> {
  const args = [
    '--import',
    'tsx',
    PROCESS,
    '3',
    ...Object.entries(topics).map(([name, n]) => `${name}:${n}`),
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      const exited = once(child, 'exit');
      process.kill(child.pid, 'SIGKILL');
      await exited;
    }
  });
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr = (stderr + d).slice(-4096);
  });
  const brokers = await new Promise<string[]>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`mock cluster did not start: ${stderr}`)),
      START_TIMEOUT_MS,
    );
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      const m = /^brokers (\S+)$/m.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(m[1].split(','));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`mock cluster exited (${code}): ${stderr}`));
    });
  });
  return { brokers };
}
