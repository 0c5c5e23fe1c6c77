/**
 * The live agent: owns the capture, the interface watcher, the pipeline, the exporters and the
 * metrics endpoint, and releases all of them on stop in the order that loses nothing: stop
 * following interfaces, stop the capture (it detaches, then drains the kernel maps), let the
 * Accounter flush into the exporters (waiting for room at most the export stop timeout), let the
 * exporters send what they hold (bounded wait), close the endpoint.
 */

import { EbpfCapture, type EbpfCaptureOptions, type EbpfCaptureStats } from '../capture/ebpf/capture.ts';
import type { RecordBatch } from '../codec/record-batch.ts';
import { V2 } from '../codec/v2-layout.ts';
import { runningKernelDropReasons } from '../ebpf/drop-reasons.ts';
import { HEALTH_FEATURE_SETTING } from '../ebpf/health-hooks.ts';
import { type HealthHookChoice, unavailableMessage } from '../ebpf/health-programs.ts';
import type { KernelMemory } from '../ebpf/kernel-memory.ts';
import { describeFilter } from '../filter/build.ts';
import { filterVerdict, NO_VLAN, VERDICT_REJECT } from '../filter/evaluate.ts';
import type { FilterProgram } from '../filter/program.ts';
import { InterfaceFilter } from '../ifaces/filter.ts';
import { missingInterfaceNames } from '../ifaces/sysfs.ts';
import type { InterfaceEvent, InterfaceListener } from '../ifaces/tracker.ts';
import { createInterfaceWatcher, type InterfaceWatcher } from '../ifaces/watcher.ts';
import { InterfaceRegistry } from '../model/interfaces.ts';
import { IP_BYTES } from '../model/ip.ts';
import { humanBytes } from '../model/names.ts';
import { DEFAULT_STOP_TIMEOUT_MS, type FlowSink } from '../sink/flow-sink.ts';
import { type UnhandledRejections, unhandledRejections } from '../unhandled-rejections.ts';
import type { AgentConfig, HostPort } from './config.ts';
import type { Logger } from './logger.ts';
import {
  AgentMetrics,
  type HealthSnapshot,
  healthSnapshot,
  type InterfaceCounters,
  type MetricsServer,
  startMetricsServer,
} from './metrics.ts';
import { Pipeline } from './pipeline.ts';
import { type RunBounds, RunLimit, type RunLimitReason } from './run-limit.ts';

/** What the agent needs of a live capture: `EbpfCapture` in production, fakes in tests. */
export interface LiveCapture {
  attach(ifName: string): Promise<void>;
  detach(ifName: string): Promise<void>;
  attached(): string[];
  batches(): AsyncIterable<RecordBatch>;
  stats(): EbpfCaptureStats;
  /** Replaces the packet filter without detaching (undefined: count every packet). */
  setFilter(program: FilterProgram | undefined): void;
  stop(): Promise<void>;
  /** Kernel memory the datapath takes (absent in fakes). */
  readonly kernelMemory?: KernelMemory;
  /** How each TCP health feature asked for is hooked, or why not (absent in fakes). */
  readonly healthHooks?: readonly HealthHookChoice[];
  /** Why the kernel refused DNS tracking asked for (the capture runs without it); absent otherwise. */
  readonly dnsRefusal?: string;
}

/** Everything an {@link Agent} is built from. */
export interface AgentOptions {
  config: AgentConfig;
  logger: Logger;
  /** The configured exporters (see createExporters); the agent stops them. */
  exporters: readonly FlowSink[];
  /** More consumers of evicted batches (the web view); stopped like the exporters. */
  observers?: readonly FlowSink[];
  /** Opens the capture; defaults to `EbpfCapture.open`. */
  openCapture?: (options: EbpfCaptureOptions) => Promise<LiveCapture>;
  /** Builds the interface watcher; defaults to the one `config.listenInterfaces` names. */
  createWatcher?: (listener: InterfaceListener) => InterfaceWatcher;
  /** Where interfaces named by `-i` are looked for at start (tests point it at a fake tree). */
  sysClassNet?: string;
  /** How long stop waits for exporters to send what they hold. */
  exportStopTimeoutMs?: number;
  /** Where stray errors are counted for /metrics; defaults to the process's tracker. */
  unhandledRejections?: UnhandledRejections;
  /** Ends the run on its own after a duration or a count of flows (`--duration`, `--count`). */
  bounds?: RunBounds;
  /** The agent's address (16 bytes, IPv4 mapped; see agent-ip.ts) written into every flow; zero when absent. */
  agentIp?: Uint8Array;
}

/** A running live agent. */
export class Agent {
  readonly #logger: Logger;
  readonly #pipeline: Pipeline;
  readonly #interfaceCounters: InterfaceCounters = { attaches: 0, detaches: 0, attachFailures: 0 };
  readonly #startedAtMs = Date.now();
  readonly #exportStopTimeoutMs: number;
  #capture: LiveCapture | undefined;
  #filter: FilterProgram | undefined;
  #watcher: InterfaceWatcher | undefined;
  #metricsServer: MetricsServer | undefined;
  #running: Promise<void> = Promise.resolve();
  #interfaceOps: Promise<void> = Promise.resolve();
  #failure: unknown;
  #stopping: Promise<void> | undefined;
  readonly #done: Promise<void>;
  #settleDone: (failure: unknown) => void = () => {};
  readonly #limit: RunLimit;

  private constructor(private readonly options: AgentOptions) {
    const { config } = options;
    this.#logger = options.logger;
    this.#exportStopTimeoutMs = options.exportStopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
    this.#limit = new RunLimit(options.bounds ?? {}, (reason) => this.#boundReached(reason));
    this.#pipeline = new Pipeline(
      {
        buffersLength: config.buffersLength,
        cacheMaxFlows: config.cacheMaxFlows,
        cacheActiveTimeoutMs: config.cacheActiveTimeoutMs,
        onEvict: (reason, flows) => {
          this.#logger.debug({ reason, flows }, 'evicted flows');
          this.#limit.countFlows(flows);
        },
        evictedRows: {
          agentIp: options.agentIp ?? new Uint8Array(IP_BYTES),
          bidirectional: config.bidirectional,
          dnsTracking: config.dnsTracking,
        },
        healthJoin: {
          dedup: config.deduper === 'firstCome',
          keepUnclaimed: (bytes, row) => this.#filterKeeps(bytes, row),
        },
      },
      [...options.exporters, ...(options.observers ?? [])],
    );
    this.#done = new Promise<void>((resolve, reject) => {
      this.#settleDone = (failure) => (failure === undefined ? resolve() : reject(failure));
    });
    this.#done.catch(() => {}); // observed through done(); never an unhandled rejection
  }

  /**
   * Opens the capture, starts the pipeline, attaches to the selected interfaces and follows them,
   * and serves metrics if configured. Throws (having released what it acquired) when any of it
   * fails: PermissionError or NotSupportedError from the capture, ConfigError for the metrics address.
   */
  static async start(options: AgentOptions): Promise<Agent> {
    const agent = new Agent(options);
    try {
      await agent.#start();
    } catch (err) {
      await agent.stop();
      throw err;
    }
    return agent;
  }

  async #start(): Promise<void> {
    const { config } = this.options;
    const open = this.options.openCapture ?? ((o: EbpfCaptureOptions) => EbpfCapture.open(o));
    const capture = await open({
      sampling: config.sampling,
      direction: config.direction,
      maxFlows: config.cacheMaxFlows,
      drainIntervalMs: config.cacheActiveTimeoutMs,
      interfaces: new InterfaceRegistry(),
      filter: config.filter,
      mapKind: config.kernelMapKind,
      kernelMemoryMaxBytes: config.kernelMemoryMaxBytes,
      dedup: config.deduper === 'firstCome',
      tunnels: config.tunnels,
      health: config.health,
      dns: config.dnsTracking ? { ports: config.dnsTrackingPorts } : undefined,
    });
    this.#capture = capture;
    this.#logHealthHooks(capture.healthHooks ?? []);
    this.#filter = config.filter;
    if (capture.kernelMemory) {
      const memory = capture.kernelMemory;
      this.#logger.info(
        {
          kernelMemoryBytes: memory.totalBytes,
          kernelMemoryMaxBytes: config.kernelMemoryMaxBytes,
          flowMapBytes: memory.flowMapBytes,
          ringBufferBytes: memory.ringBufferBytes,
          mapKind: memory.mapKind,
          possibleCpus: memory.possibleCpus,
        },
        `datapath loaded: ${humanBytes(memory.totalBytes)} of kernel memory (${memory.mapKind} flow maps)`,
      );
    }
    if (config.dnsTracking && capture.dnsRefusal !== undefined) {
      this.#logger.warn(
        { setting: 'ENABLE_DNS_TRACKING', reason: capture.dnsRefusal },
        'the kernel refused the DNS parser of the TC programs: flows are counted without DNS',
      );
    }
    this.#running = this.#pipeline.run(capture.batches()).then(
      () => undefined,
      (err: unknown) => {
        this.#failure ??= err;
        this.#logger.error({ err }, 'capture failed; stopping');
      },
    );
    // A capture that fails on its own stops the agent; after stop() this is a no-op.
    void this.#running.then(() => this.stop());

    const listener: InterfaceListener = (event) => this.#queueInterfaceEvent(event);
    this.#watcher =
      this.options.createWatcher?.(listener) ??
      createInterfaceWatcher({
        mode: config.listenInterfaces,
        filter: new InterfaceFilter(config.interfaces, config.excludeInterfaces),
        listener,
        pollPeriodMs: config.listenPollPeriodMs,
        onWarning: (message, err) => this.#logger.warn({ err }, message),
      });
    await this.#watcher.start();
    for (const name of missingInterfaceNames(config.interfaces, this.options.sysClassNet)) {
      this.#logger.warn(
        { interface: name, hint: 'check the name with `ip link`; it is attached as soon as it appears' },
        `interface ${name} does not exist: waiting for it to appear`,
      );
    }

    if (config.metrics) {
      const metrics = new AgentMetrics(
        () => this.health(),
        () => runningKernelDropReasons((message) => this.#logger.warn(message)),
      );
      this.#metricsServer = await startMetricsServer(metrics, config.metrics);
      const { host, port } = this.#metricsServer.address;
      this.#logger.info({ address: `${host}:${port}` }, 'metrics listening on /metrics');
    }
    this.#logger.info(
      {
        listen: config.listenInterfaces,
        export: config.export,
        exporters: this.#pipeline.exporters.map((e) => e.name),
        filter: describeFilter(config.filter),
      },
      'agent started',
    );
    // performance.now() counts from the process's start: --duration bounds the whole run.
    this.#limit.start(performance.now());
  }

  /** One line per TCP health feature: its hook, or why the kernel has none for it. */
  #logHealthHooks(choices: readonly HealthHookChoice[]): void {
    for (const choice of choices) {
      const log = { feature: choice.feature, setting: HEALTH_FEATURE_SETTING[choice.feature] };
      if (choice.hook)
        this.#logger.info({ ...log, hook: choice.hook.hook }, `${choice.feature} via ${choice.hook.hook}`);
      else this.#logger.warn({ ...log, refused: choice.refused }, unavailableMessage(choice));
    }
  }

  /**
   * Whether the filter in use accepts the key of a health row no flow claimed (its record is
   * kept then): health of a flow the filter rejects is not reported, as its packets are not.
   */
  #filterKeeps(bytes: Buffer, row: number): boolean {
    const filter = this.#filter;
    if (filter === undefined) return true;
    const vlan = bytes.readUInt16LE(row + V2.VLAN_OUTER);
    return filterVerdict(filter, bytes, row, vlan === 0 ? NO_VLAN : vlan) !== VERDICT_REJECT;
  }

  #boundReached(reason: RunLimitReason): void {
    const bounds = this.options.bounds ?? {};
    const what =
      reason === 'duration' ? `--duration of ${bounds.durationMs} ms` : `--count of ${bounds.maxFlows} flows`;
    this.#logger.info({ reason }, `${what} reached: stopping, every counted flow is flushed`);
    void this.stop();
  }

  /** Where `/metrics` listens (the real port when 0 was configured); undefined when off. */
  get metricsAddress(): HostPort | undefined {
    return this.#metricsServer?.address;
  }

  /** Adds a consumer of evicted batches from now on (see Pipeline.addExporter); stopped with the rest. */
  addObserver(observer: FlowSink): void {
    this.#pipeline.addExporter(observer);
  }

  /**
   * Puts `program` in use for every packet from now on (SIGHUP reload), without detaching;
   * undefined counts every packet. Flows already counted stay.
   */
  setFilter(program: FilterProgram | undefined): void {
    if (!this.#capture || this.#stopping) return;
    this.#capture.setFilter(program);
    this.#filter = program;
    this.#logger.info({ filter: describeFilter(program) }, 'filter replaced');
  }

  /** Every figure of the agent now, as plain numbers. */
  health(): HealthSnapshot {
    return healthSnapshot({
      startedAtMs: this.#startedAtMs,
      pipeline: this.#pipeline,
      captureStats: () => this.#capture?.stats(),
      healthHooks: () => this.#capture?.healthHooks ?? [],
      dnsTracking: () => {
        if (!this.options.config.dnsTracking || this.#capture === undefined) return 'off';
        return this.#capture.dnsRefusal === undefined ? 'on' : 'refused';
      },
      attachedInterfaces: () => this.#capture?.attached() ?? [],
      interfaceCounters: this.#interfaceCounters,
      filter: describeFilter(this.#filter),
      unhandledRejections: (this.options.unhandledRejections ?? unhandledRejections).counts,
    });
  }

  /** Resolves when the agent has stopped; rejects with the capture's error if that is why it stopped. */
  done(): Promise<void> {
    return this.#done;
  }

  /** Stops everything in order (idempotent); resolves when all is released. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    const step = async (what: string, action: () => Promise<void> | undefined) => {
      try {
        await action();
      } catch (err) {
        this.#failure ??= err;
        this.#logger.error({ err }, `${what} failed while stopping`);
      }
    };
    this.#limit.stop();
    await step('stopping the interface watcher', () => this.#watcher?.stop());
    await this.#interfaceOps;
    await step('stopping the capture', () => this.#capture?.stop());
    // The last flows may wait for room in an exporter's queue, but no longer than the exporters
    // may take to flush: a sink that stopped taking flows must not hold the stop up.
    const giveUp = setTimeout(() => this.#pipeline.stopWaiting(), this.#exportStopTimeoutMs);
    await this.#running;
    clearTimeout(giveUp);
    await step('stopping the exporters', () => this.#pipeline.stopExporters(this.#exportStopTimeoutMs));
    await step('closing the metrics endpoint', () => this.#metricsServer?.close());
    this.#logger.info({ health: this.health() }, 'agent stopped');
    this.#settleDone(this.#failure);
  }

  /** Attaches and detaches one at a time, in event order, so a quick down/up never races. */
  #queueInterfaceEvent(event: InterfaceEvent): void {
    this.#interfaceOps = this.#interfaceOps.then(() => this.#applyInterfaceEvent(event));
  }

  async #applyInterfaceEvent(event: InterfaceEvent): Promise<void> {
    const capture = this.#capture;
    if (!capture || this.#stopping) return;
    const log = { interface: event.name, ifIndex: event.ifIndex };
    try {
      if (event.kind === 'added') {
        await capture.attach(event.name);
        this.#interfaceCounters.attaches++;
        this.#logger.info(log, 'attached');
      } else {
        await capture.detach(event.name);
        this.#interfaceCounters.detaches++;
        this.#logger.info(log, 'detached');
      }
    } catch (err) {
      if (event.kind === 'added') this.#interfaceCounters.attachFailures++;
      this.#logger.warn({ ...log, err }, `${event.kind === 'added' ? 'attaching' : 'detaching'} failed`);
    }
  }
}
