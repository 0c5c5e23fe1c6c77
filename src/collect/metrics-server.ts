/**
 * `--metrics-port`: the collector's `/metrics` (Prometheus text) and `/health` (JSON; 200 while
 * every sink's last insert succeeded, 503 otherwise) over plain HTTP.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ListenError } from '../errors.ts';
import type { CollectMetrics } from './collect-metrics.ts';

/** A listening metrics server. */
export interface MetricsServer {
  readonly port: number;
  close(): Promise<void>;
}

/** Serves `metrics` on `host:port` (0 picks a free port). */
export async function startMetricsServer(
  metrics: CollectMetrics,
  host: string,
  port: number,
): Promise<MetricsServer> {
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (request.method !== 'GET') {
      response.writeHead(405, { allow: 'GET' }).end();
    } else if (path === '/metrics') {
      response.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(metrics.prometheusText());
    } else if (path === '/health') {
      const health = metrics.health();
      response
        .writeHead(health.status === 'ok' ? 200 : 503, { 'content-type': 'application/json' })
        .end(`${JSON.stringify(health)}\n`);
    } else {
      response.writeHead(404).end();
    }
  });
  server.listen(port, host);
  try {
    await Promise.race([
      once(server, 'listening'),
      once(server, 'error').then(([err]) => Promise.reject(err)),
    ]);
  } catch (err) {
    throw new ListenError(`${host}:${port}`, { cause: err });
  }
  let closing: Promise<void> | undefined;
  return {
    port: (server.address() as AddressInfo).port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
