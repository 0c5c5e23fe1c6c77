/**
 * A real ClickHouse for tests: Debian's clickhouse-server (18.16; any later one works too) started
 * as a child process in a temporary directory, with HTTP and native ports on free loopback ports,
 * its data, temporary files and logs inside that directory, and a `default` user without a
 * password. It runs as whoever runs the tests (root included: the server refuses root only when
 * the data directory belongs to another user, and here root made it). Killed by pid and its
 * directory removed in `t.after`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where Debian installs the server. */
export const CLICKHOUSE_SERVER = '/usr/sbin/clickhouse-server';
/** How long the server may take to answer /ping. */
const START_TIMEOUT_MS = 30_000;
const PING_INTERVAL_MS = 50;

type TestContext = { after: (fn: () => unknown) => void };

/** A running server. */
export interface ClickHouseServer {
  /** `http://127.0.0.1:PORT` of its HTTP interface. */
  readonly httpUrl: string;
  /** The `clickhouse://127.0.0.1:PORT/DB` form `flowtap collect --to` and `query --store` take. */
  storeUrl(database: string): string;
  /** Runs `sql` over HTTP and returns the response text; rejects with the server's message. */
  query(sql: string): Promise<string>;
  /** The server's pid. */
  readonly pid: number;
}

/** True when the Debian package is installed (tests skip themselves otherwise). */
export function clickhouseAvailable(): boolean {
  return existsSync(CLICKHOUSE_SERVER);
}

/** A free loopback TCP port (the OS picks it; the server binds it a moment later). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

function configXml(dir: string, httpPort: number, tcpPort: number): string {
  return `<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>${dir}/server.log</log><errorlog>${dir}/error.log</errorlog><console>0</console></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>${httpPort}</http_port>
  <tcp_port>${tcpPort}</tcp_port>
  <path>${dir}/data/</path>
  <tmp_path>${dir}/tmp/</tmp_path>
  <user_files_path>${dir}/user_files/</user_files_path>
  <format_schema_path>${dir}/format_schemas/</format_schema_path>
  <users_config>${dir}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>67108864</mark_cache_size>
</yandex>
`;
}

const USERS_XML = `<?xml version="1.0"?>
<yandex>
  <profiles><default></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas>
</yandex>
`;

/** Starts a server for the test `t`; it is killed and its directory removed after the test. */
export async function startClickHouse(t: TestContext): Promise<ClickHouseServer> {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-clickhouse-'));
  let child: ChildProcess | undefined;
  t.after(async () => {
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child?.once('exit', resolve));
      process.kill(child.pid, 'SIGKILL');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });
  const httpPort = await freePort();
  const tcpPort = await freePort();
  writeFileSync(join(dir, 'config.xml'), configXml(dir, httpPort, tcpPort));
  writeFileSync(join(dir, 'users.xml'), USERS_XML);
  child = spawn(CLICKHOUSE_SERVER, [`--config-file=${join(dir, 'config.xml')}`], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4096);
  });
  const httpUrl = `http://127.0.0.1:${httpPort}`;
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) {
      const log = existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : '';
      throw new Error(`clickhouse-server exited with ${child.exitCode}: ${stderr}${log.slice(-4096)}`);
    }
    const ok = await fetch(`${httpUrl}/ping`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`clickhouse-server did not answer /ping in time: ${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, PING_INTERVAL_MS));
  }
  const pid = child.pid as number;
  return {
    httpUrl,
    pid,
    storeUrl: (database) => `clickhouse://127.0.0.1:${httpPort}/${database}`,
    async query(sql) {
      const response = await fetch(httpUrl, { method: 'POST', body: sql });
      const text = await response.text();
      if (!response.ok) throw new Error(`ClickHouse refused ${sql.slice(0, 200)}: ${text}`);
      return text;
    },
  };
}
