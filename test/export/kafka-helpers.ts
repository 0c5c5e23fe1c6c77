/**
 * A Kafka peer flowtap did not write, for the Kafka exporter's tests: librdkafka's mock cluster
 * (three brokers on loopback) started by Debian's kcat, which consumes the test topic and prints
 * every message losslessly. With FLOWTAP_TEST_KAFKA_BROKERS=host:port,... the same kcat consumer
 * reads a real cluster instead. Also a bootstrap proxy, so an exporter can be pointed at a cluster
 * before it exists.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';

/** Brokers of a real cluster to test against instead of the mock one. */
export const REAL_KAFKA_BROKERS = process.env.FLOWTAP_TEST_KAFKA_BROKERS;
/** How long kcat may take to print the mock cluster's addresses. */
const CLUSTER_START_TIMEOUT_MS = 10_000;
/** How long kcat may take to exit after SIGTERM before it is killed. */
const KCAT_EXIT_TIMEOUT_MS = 3_000;
/** Tail of kcat's stderr kept for error messages. */
const STDERR_TAIL_BYTES = 4_096;

/** One message as kcat consumed it. */
export interface ConsumedMessage {
  partition: number;
  offset: number;
  /** Null when the message had no key. */
  key: Buffer | null;
  /** Null for a null (tombstone) value. */
  value: Buffer | null;
}

/** A running cluster with a consumer of one topic. */
export interface KafkaPeer {
  /** Bootstrap brokers as host:port. */
  readonly brokers: string[];
  /** Messages consumed so far, in arrival order. */
  readonly messages: ConsumedMessage[];
  /** Resolves with the messages once at least `count` arrived; rejects after `timeoutMs`. */
  waitForMessages(count: number, timeoutMs: number): Promise<ConsumedMessage[]>;
  /** Stops kcat (and with it the mock cluster). */
  stop(): Promise<void>;
}

/**
 * kcat's output format: a text header `partition offset keyLength valueLength` (length -1 for
 * null), a newline, then the raw key and value bytes. Lengths make it lossless for any bytes.
 */
const KCAT_FORMAT = '%p %o %K %S\\n%k%s';

/** Parses kcat's framed output as it arrives. */
class FramedOutputParser {
  #pending = Buffer.alloc(0);

  constructor(private readonly onMessage: (message: ConsumedMessage) => void) {}

  push(chunk: Buffer): void {
    this.#pending = Buffer.concat([this.#pending, chunk]);
    for (;;) {
      const newline = this.#pending.indexOf(0x0a);
      if (newline < 0) return;
      const header = this.#pending.subarray(0, newline).toString('latin1');
      const match = /^(\d+) (\d+) (-?\d+) (-?\d+)$/.exec(header);
      if (!match) throw new Error(`unexpected kcat output header ${JSON.stringify(header)}`);
      const keyLength = Number(match[3]);
      const valueLength = Number(match[4]);
      const bodyStart = newline + 1;
      const keyEnd = bodyStart + Math.max(keyLength, 0);
      const valueEnd = keyEnd + Math.max(valueLength, 0);
      if (this.#pending.length < valueEnd) return;
      this.onMessage({
        partition: Number(match[1]),
        offset: Number(match[2]),
        key: keyLength < 0 ? null : Buffer.from(this.#pending.subarray(bodyStart, keyEnd)),
        value: valueLength < 0 ? null : Buffer.from(this.#pending.subarray(keyEnd, valueEnd)),
      });
      this.#pending = this.#pending.subarray(valueEnd);
    }
  }
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), KCAT_EXIT_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

/**
 * Starts kcat consuming `topic` from the beginning: from a fresh 3-broker mock cluster that lives
 * in the kcat process, or from FLOWTAP_TEST_KAFKA_BROKERS when set.
 */
export async function startKafkaPeer(topic: string): Promise<KafkaPeer> {
  const common = ['-C', '-u', '-t', topic, '-o', 'beginning', '-f', KCAT_FORMAT];
  const args = REAL_KAFKA_BROKERS
    ? [...common, '-b', REAL_KAFKA_BROKERS]
    : [...common, '-b', 'mock', '-X', 'test.mock.num.brokers=3', '-d', 'mock'];
  const child = spawn('kcat', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const messages: ConsumedMessage[] = [];
  const waiters = new Set<() => void>();
  let stderrTail = '';
  let failure: Error | undefined;
  const parser = new FramedOutputParser((message) => {
    messages.push(message);
    for (const wake of waiters) wake();
  });
  child.stdout?.on('data', (chunk: Buffer) => {
    try {
      parser.push(chunk);
    } catch (err) {
      failure = err as Error;
    }
  });
  child.on('error', (err) => {
    failure = err;
  });
  child.on('exit', () => {
    for (const wake of waiters) wake();
  });

  const brokers = await new Promise<string[]>((resolve, reject) => {
    if (REAL_KAFKA_BROKERS) {
      resolve(REAL_KAFKA_BROKERS.split(','));
      return;
    }
    const timer = setTimeout(() => {
      reject(
        new Error(
          `kcat printed no mock cluster address within ${CLUSTER_START_TIMEOUT_MS} ms: ${stderrTail}`,
        ),
      );
    }, CLUSTER_START_TIMEOUT_MS);
    // stderr carries librdkafka's mock debug log: read it all (a full pipe would stall kcat).
    child.stderr?.on('data', (chunk: Buffer) => {
      const text = stderrTail + chunk.toString('latin1');
      stderrTail = text.slice(-STDERR_TAIL_BYTES);
      // Whitespace after the list: a line split between two chunks is matched only once whole.
      const match = /bootstrap\.servers=([0-9.:,]+)\s/.exec(text);
      if (match) {
        clearTimeout(timer);
        resolve(match[1].split(','));
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`kcat exited (${code ?? signal}) before the mock cluster started: ${stderrTail}`));
    });
  }).catch(async (err) => {
    await stopProcess(child);
    throw err;
  });

  return {
    brokers,
    messages,
    waitForMessages(count, timeoutMs) {
      return new Promise((resolve, reject) => {
        const wake = () => {
          if (failure) finish(failure);
          else if (messages.length >= count) finish();
          else if (child.exitCode !== null || child.signalCode !== null)
            finish(new Error(`kcat exited: ${stderrTail}`));
        };
        const timer = setTimeout(
          () => finish(new Error(`${messages.length} of ${count} messages consumed within ${timeoutMs} ms`)),
          timeoutMs,
        );
        const finish = (err?: Error) => {
          clearTimeout(timer);
          waiters.delete(wake);
          if (err) reject(err);
          else resolve(messages.slice());
        };
        waiters.add(wake);
        wake();
      });
    },
    stop: () => stopProcess(child),
  };
}

/** A TCP proxy to a bootstrap broker that is set later; until then it closes every connection. */
export interface BootstrapProxy {
  /** Address to give the exporter as its broker. */
  readonly address: string;
  /** Forwards new connections to `hostPort` from now on. */
  setUpstream(hostPort: string): void;
  close(): Promise<void>;
}

/** Starts a {@link BootstrapProxy} on a loopback port chosen by the kernel. */
export async function startBootstrapProxy(): Promise<BootstrapProxy> {
  let upstream: { host: string; port: number } | undefined;
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };
  const server: Server = createServer((client) => {
    track(client);
    if (!upstream) {
      client.destroy();
      return;
    }
    const broker = connect(upstream);
    track(broker);
    client.pipe(broker).pipe(client);
    client.on('close', () => broker.destroy());
    broker.on('close', () => client.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    address: `127.0.0.1:${port}`,
    setUpstream(hostPort) {
      const colon = hostPort.lastIndexOf(':');
      upstream = { host: hostPort.slice(0, colon), port: Number(hostPort.slice(colon + 1)) };
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A topic name no earlier run used, so a real cluster's old messages are never read back. */
export function uniqueTopic(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}`;
}
