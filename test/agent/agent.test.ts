import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { type TestContext, test } from 'node:test';
import { pino } from 'pino';
import { Agent, type LiveCapture } from '../../src/agent/agent.ts';
import { type AgentConfig, loadConfig } from '../../src/agent/config.ts';
import { createLogger, type Logger } from '../../src/agent/logger.ts';
import { AgentMetrics } from '../../src/agent/metrics.ts';
import type { RunBounds } from '../../src/agent/run-limit.ts';
import type { EbpfCaptureStats } from '../../src/capture/ebpf/capture.ts';
import type { RecordBatch } from '../../src/codec/record-batch.ts';
import { HEALTH_HOOKS } from '../../src/ebpf/health-hooks.ts';
import type { HealthHookChoice } from '../../src/ebpf/health-programs.ts';
import { InterfaceError } from '../../src/errors.ts';
import { buildFilter, describeFilter } from '../../src/filter/build.ts';
import type { FilterProgram } from '../../src/filter/program.ts';
import type { InterfaceListener } from '../../src/ifaces/tracker.ts';
import type { InterfaceWatcher } from '../../src/ifaces/watcher.ts';
import { UnhandledRejections } from '../../src/unhandled-rejections.ts';
import { batchOf, RecordingExporter } from './fakes.ts';

/** A capture that hands out what the test pushes, and one last batch when stopped (the final drain). */
class FakeCapture implements LiveCapture {
  readonly log: string[] = [];
  readonly #queue: RecordBatch[] = [];
  readonly #attached = new Set<string>();
  #wake: (() => void) | undefined;
  #ended = false;
  #failure: unknown;

  constructor(
    private readonly finalDrain: RecordBatch | undefined,
    private readonly missing = new Set<string>(),
    /** How the fake kernel hooked the TCP health features asked for. */
    readonly healthHooks: readonly HealthHookChoice[] = [],
    /** Why the fake kernel refused DNS tracking; undefined: it took it. */
    readonly dnsRefusal?: string,
  ) {}

  push(batch: RecordBatch): void {
    this.#queue.push(batch);
    this.#wake?.();
  }

  fail(err: Error): void {
    this.#failure = err;
    this.#wake?.();
  }

  async attach(ifName: string): Promise<void> {
    if (this.missing.has(ifName)) throw new InterfaceError(ifName, `interface ${ifName} does not exist`);
    this.#attached.add(ifName);
    this.log.push(`attach ${ifName}`);
  }

  async detach(ifName: string): Promise<void> {
    this.#attached.delete(ifName);
    this.log.push(`detach ${ifName}`);
  }

  attached(): string[] {
    return [...this.#attached];
  }

  async *batches(): AsyncIterable<RecordBatch> {
    for (;;) {
      const batch = this.#queue.shift();
      if (batch) {
        yield batch;
        continue;
      }
      if (this.#failure) throw this.#failure;
      if (this.#ended) return;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  stats(): EbpfCaptureStats {
    return {
      ringBufferFallbacks: 3,
      parseErrors: 2,
      mapUpdateFailures: 0,
      ringBufferLost: 1,
      ringBufferMalformed: 4,
      drains: 5,
      deferredDrains: 0,
      filterAccepted: 40,
      filterRejected: 9,
    };
  }

  setFilter(program: FilterProgram | undefined): void {
    this.log.push(`filter ${describeFilter(program)}`);
  }

  async stop(): Promise<void> {
    this.log.push('stop');
    this.#attached.clear();
    if (this.finalDrain) this.push(this.finalDrain);
    this.#ended = true;
    this.#wake?.();
  }
}

/** A watcher the test drives by hand. */
class FakeWatcher implements InterfaceWatcher {
  stopped = false;
  constructor(
    readonly emit: InterfaceListener,
    private readonly initial: string[],
  ) {}
  async start(): Promise<void> {
    for (const [i, name] of this.initial.entries()) this.emit({ kind: 'added', name, ifIndex: 10 + i });
  }
  async stop(): Promise<void> {
    this.stopped = true;
  }
  current(): ReadonlyMap<string, number> {
    return new Map();
  }
}

function testConfig(overrides: Partial<AgentConfig> = {}): AgentConfig {
  return { ...loadConfig({ flags: {}, env: {}, stdoutIsTty: false }), ...overrides };
}

async function startAgent(
  t: TestContext,
  capture: FakeCapture,
  options: {
    initial?: string[];
    config?: Partial<AgentConfig>;
    rejections?: UnhandledRejections;
    bounds?: RunBounds;
    logger?: Logger;
    sysClassNet?: string;
  } = {},
) {
  const exporter = new RecordingExporter('rec');
  let watcher: FakeWatcher | undefined;
  const agent = await Agent.start({
    config: testConfig(options.config),
    logger: options.logger ?? createLogger('silent'),
    exporters: [exporter],
    sysClassNet: options.sysClassNet,
    openCapture: async () => capture,
    unhandledRejections: options.rejections,
    bounds: options.bounds,
    createWatcher: (listener) => {
      watcher = new FakeWatcher(listener, options.initial ?? []);
      return watcher;
    },
  });
  t.after(() => agent.stop());
  return { agent, exporter, watcher: watcher as unknown as FakeWatcher };
}

/** Waits until `check()` holds, failing after 5 s. */
async function eventually(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

test('stopping exports the flows of the final drain before the exporters stop', async (t) => {
  const capture = new FakeCapture(batchOf(4, 7000));
  const { agent, exporter, watcher } = await startAgent(t, capture);
  capture.push(batchOf(2, 1000));
  await agent.stop();
  await agent.done();
  assert.ok(watcher.stopped, 'the watcher is stopped first');
  assert.equal(exporter.flows.length, 6, 'flows before and at the final drain are exported');
  assert.ok(exporter.stats.flowsSent === 6 && exporter.stats.queuedBatches === 0);
});

test('interfaces the watcher reports are attached and detached in order', async (t) => {
  const capture = new FakeCapture(undefined);
  const { agent, watcher } = await startAgent(t, capture, { initial: ['veth0', 'veth1'] });
  watcher.emit({ kind: 'removed', name: 'veth0', ifIndex: 10 });
  watcher.emit({ kind: 'added', name: 'veth0', ifIndex: 12 });
  await eventually(() => capture.log.length === 4, 'four interface operations');
  assert.deepEqual(capture.log, ['attach veth0', 'attach veth1', 'detach veth0', 'attach veth0']);
  assert.deepEqual(agent.health().interfaces, { attaches: 3, detaches: 1, attachFailures: 0 });
});

test('an interface that cannot be attached is counted and the agent carries on', async (t) => {
  const capture = new FakeCapture(undefined, new Set(['gone0']));
  const { agent } = await startAgent(t, capture, { initial: ['gone0', 'veth1'] });
  await eventually(() => agent.health().interfaces.attaches === 1, 'the second attach');
  assert.equal(agent.health().interfaces.attachFailures, 1);
  assert.deepEqual(agent.health().attachedInterfaces, ['veth1']);
});

test('a capture that fails stops the agent, exports what came before, and done() reports the error', async (t) => {
  const capture = new FakeCapture(undefined);
  const { agent, exporter } = await startAgent(t, capture);
  capture.push(batchOf(3));
  capture.fail(new Error('flow map drain failed'));
  await assert.rejects(agent.done(), /flow map drain failed/);
  assert.equal(exporter.flows.length, 3);
});

test('/metrics serves the agent figures on the configured loopback port', async (t) => {
  const capture = new FakeCapture(undefined);
  const { agent } = await startAgent(t, capture, {
    initial: ['veth0'],
    config: { metrics: { host: '127.0.0.1', port: 0 } },
  });
  capture.push(batchOf(2, 1000, 3));
  await eventually(() => agent.health().packetsSeen === 6, 'the batch to be counted');
  await eventually(() => agent.health().attachedInterfaces.length === 1, 'the attach');
  const address = agent.metricsAddress;
  assert.ok(address);
  assert.equal(address.host, '127.0.0.1');
  const text = await (await fetch(`http://127.0.0.1:${address.port}/metrics`)).text();
  assert.match(text, /^flowtap_packets_total 6$/m);
  assert.match(text, /^flowtap_bytes_total 600$/m);
  assert.match(text, /^flowtap_attached_interfaces 1$/m);
  assert.match(text, /^flowtap_ring_buffer_fallbacks_total 3$/m);
  assert.match(text, /^flowtap_parse_errors_total 2$/m);
  assert.match(text, /^flowtap_ring_buffer_lost_total 1$/m);
  assert.match(text, /^flowtap_filter_packets_total\{verdict="accepted"\} 40$/m);
  assert.match(text, /^flowtap_filter_packets_total\{verdict="rejected"\} 9$/m);
  assert.match(text, /^flowtap_ring_buffer_malformed_total 4$/m);
  assert.match(text, /^flowtap_export_flows_total\{exporter="rec",result="ok"\} 0$/m);
  const missing = await fetch(`http://127.0.0.1:${address.port}/other`);
  assert.equal(missing.status, 404);
  await missing.body?.cancel();
});

test('/metrics counts stray errors by the package that raised them', async (t) => {
  const rejections = new UnhandledRejections();
  rejections.useLogger({ error() {}, debug() {} });
  const { agent } = await startAgent(t, new FakeCapture(undefined), {
    config: { metrics: { host: '127.0.0.1', port: 0 } },
    rejections,
  });
  const fromKafka = new Error('broker went away');
  fromKafka.stack =
    'Error: broker went away\n    at f (/opt/flowtap/node_modules/kafkajs/src/broker/index.js:1:2)';
  rejections.record(fromKafka);
  rejections.record(fromKafka);
  const text = await (await fetch(`http://127.0.0.1:${agent.metricsAddress?.port}/metrics`)).text();
  assert.match(text, /^flowtap_unhandled_rejections_total\{origin="kafkajs"\} 2$/m);
  assert.deepEqual(agent.health().unhandledRejections, { kafkajs: 2 });
});

test('stopping the agent closes the metrics endpoint', async (t) => {
  const capture = new FakeCapture(undefined);
  const { agent } = await startAgent(t, capture, { config: { metrics: { host: '127.0.0.1', port: 0 } } });
  const port = agent.metricsAddress?.port;
  await agent.stop();
  await assert.rejects(fetch(`http://127.0.0.1:${port}/metrics`));
});

test('replacing the filter keeps every interface attached and shows the new filter in health', async (t) => {
  const capture = new FakeCapture(undefined);
  const { agent } = await startAgent(t, capture, {
    initial: ['veth0'],
    config: { filter: buildFilter({ expression: 'udp' }) },
  });
  await eventually(() => capture.log.length === 1, 'the attach');
  assert.equal(agent.health().filter, 'udp');
  agent.setFilter(buildFilter({ expression: 'tcp port 5201' }));
  assert.deepEqual(capture.log, ['attach veth0', 'filter tcp port 5201']);
  assert.equal(agent.health().filter, 'tcp port 5201');
  assert.deepEqual(agent.health().attachedInterfaces, ['veth0']);
});

test('a run bounded by --count stops on its own once that many flows were evicted, flushing the rest', async (t) => {
  const capture = new FakeCapture(batchOf(2, 9000));
  // A cache of 3 flows evicts its 3 when the 4th comes: the count is reached by that eviction.
  const { agent, exporter } = await startAgent(t, capture, {
    bounds: { maxFlows: 3 },
    config: { cacheMaxFlows: 3 },
  });
  capture.push(batchOf(3, 1000));
  capture.push(batchOf(3, 2000));
  await agent.done();
  assert.ok(capture.log.includes('stop'), 'the capture was stopped and drained');
  assert.equal(
    exporter.flows.length,
    8,
    'the flows past the count and those of the final drain are exported',
  );
});

test('a run bounded by --duration stops on its own and exports the final drain', async (t) => {
  const capture = new FakeCapture(batchOf(4, 9000));
  const { agent, exporter } = await startAgent(t, capture, { bounds: { durationMs: 20 } });
  await agent.done();
  assert.equal(exporter.flows.length, 4);
});

/** A logger keeping each line as an object. */
function recordingLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

test('an -i name that is no interface is warned about at start, and health says no interface is attached yet', async (t) => {
  const sysClassNet = mkdtempSync(join(tmpdir(), 'flowtap-sys-'));
  t.after(() => rmSync(sysClassNet, { recursive: true, force: true }));
  mkdirSync(join(sysClassNet, 'veth0'));
  const { logger, lines } = recordingLogger();
  const { agent } = await startAgent(t, new FakeCapture(undefined), {
    config: { interfaces: ['veth0', 'eht0', '/^br/'] },
    logger,
    sysClassNet,
  });
  await eventually(() => lines.some((l) => l.level === 40), 'the warning');
  const warnings = lines.filter((l) => l.level === 40).map((l) => l.msg);
  assert.deepEqual(warnings, ['interface eht0 does not exist: waiting for it to appear']);
  assert.deepEqual(agent.health().warnings, ['no interface attached yet']);
});

test('a health feature the kernel has no hook for is one warning line and a metric at 0; the others log their hook', async (t) => {
  const { logger, lines } = recordingLogger();
  const refused = [
    'fentry/tcp_rcv_established: not loaded, EPERM',
    'tp_btf/tcp_probe: not attached, ENOENT',
    'raw_tp/tcp_probe: not attached, ENOENT',
  ];
  const capture = new FakeCapture(undefined, new Set(), [
    { feature: 'rtt', hook: undefined, refused },
    { feature: 'drops', hook: HEALTH_HOOKS.drops[0], refused: [] },
  ]);
  const { agent } = await startAgent(t, capture, { logger });
  const warnings = lines.filter((l) => l.level === 40 && l.feature === 'rtt');
  assert.equal(warnings.length, 1);
  assert.match(
    String(warnings[0].msg),
    /^ENABLE_RTT is on, but this kernel refused every hook for it \(fentry\/tcp_rcv_established: not loaded, EPERM; /,
  );
  assert.match(String(warnings[0].msg), /rtt is not measured, everything else runs/);
  assert.ok(lines.some((l) => l.level === 30 && l.msg === 'drops via tp_btf/kfree_skb'));
  assert.deepEqual(agent.health().healthHooks, [
    { feature: 'rtt', hook: 'none' },
    { feature: 'drops', hook: 'tp_btf/kfree_skb' },
  ]);
  const metrics = new AgentMetrics(() => agent.health());
  const text = await metrics.render();
  assert.match(text, /^flowtap_health_feature_enabled\{feature="rtt",hook="none"\} 0$/m);
  assert.match(text, /^flowtap_health_feature_enabled\{feature="drops",hook="tp_btf\/kfree_skb"\} 1$/m);
});

test('DNS tracking the kernel refuses is one warning line and flowtap_dns_tracking_enabled 0', async (t) => {
  const { logger, lines } = recordingLogger();
  const reason = 'loading flows.bpf.o was refused by the kernel (EACCES)';
  const capture = new FakeCapture(undefined, new Set(), [], reason);
  const { agent } = await startAgent(t, capture, { logger, config: { dnsTracking: true } });
  const warnings = lines.filter((l) => l.level === 40 && l.setting === 'ENABLE_DNS_TRACKING');
  assert.equal(warnings.length, 1);
  assert.equal(warnings[0].reason, reason);
  assert.match(String(warnings[0].msg), /flows are counted without DNS/);
  const text = await new AgentMetrics(() => agent.health()).render();
  assert.match(text, /^flowtap_dns_tracking_enabled 0$/m);
  assert.match(text, /^flowtap_dns_kernel_malformed_total\{reason="bad-pointer"\} 0$/m);
});

test('DNS tracking the kernel takes logs no warning and reports flowtap_dns_tracking_enabled 1', async (t) => {
  const { logger, lines } = recordingLogger();
  const { agent } = await startAgent(t, new FakeCapture(undefined), {
    logger,
    config: { dnsTracking: true },
  });
  assert.equal(lines.filter((l) => l.setting === 'ENABLE_DNS_TRACKING').length, 0);
  const text = await new AgentMetrics(() => agent.health()).render();
  assert.match(text, /^flowtap_dns_tracking_enabled 1$/m);
});

test('without DNS tracking asked for, the kernel DNS metrics read 0 and health has no DNS part', async (t) => {
  const { agent } = await startAgent(t, new FakeCapture(undefined));
  assert.equal(agent.health().dnsKernel, undefined);
  const text = await new AgentMetrics(() => agent.health()).render();
  assert.match(text, /^flowtap_dns_tracking_enabled 0$/m);
  assert.match(text, /^flowtap_dns_pending_queries 0$/m);
});

test('health has no warning once an interface was attached', async (t) => {
  const { agent } = await startAgent(t, new FakeCapture(undefined), { initial: ['veth0'] });
  await eventually(() => agent.health().interfaces.attaches === 1, 'the attach');
  assert.deepEqual(agent.health().warnings, []);
});

test('/metrics has an index at /, the process figures and the counts per interface and direction', async (t) => {
  const capture = new FakeCapture(undefined);
  const { agent } = await startAgent(t, capture, {
    initial: ['veth0'],
    config: { metrics: { host: '127.0.0.1', port: 0 } },
  });
  capture.push(batchOf(2, 1000, 3));
  await eventually(() => agent.health().packetsSeen === 6, 'the batch to be counted');
  await eventually(() => agent.health().attachedInterfaces.length === 1, 'the attach');
  const base = `http://127.0.0.1:${agent.metricsAddress?.port}`;
  const index = await fetch(`${base}/`);
  assert.equal(index.status, 200);
  assert.match(await index.text(), /<a href="\/metrics">/);
  const text = await (await fetch(`${base}/metrics`)).text();
  assert.match(text, /^flowtap_interface_packets_total\{interface="if\d+",direction="egress"\} 6$/m);
  assert.match(text, /^flowtap_interface_bytes_total\{interface="if\d+",direction="egress"\} 600$/m);
  assert.match(text, /^flowtap_interface_attached\{interface="veth0"\} 1$/m);
  assert.match(text, /^process_cpu_seconds_total \d/m);
  assert.match(text, /^process_resident_memory_bytes \d/m);
});
