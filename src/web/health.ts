/**
 * The agent figures the web view shows, as the plain object a health provider returns. The agent's
 * own snapshot (src/agent/metrics.ts, the figures of /metrics) has this shape and more, so the
 * agent passes `() => agent.health()` as is; `flowtap read` passes the few figures a capture has.
 * Defined here, not imported, because the web view sits below the agent in the layering.
 */

/** One exporter's delivery figures. */
export interface ExporterHealth {
  readonly name: string;
  readonly flowsSent: number;
  /** Flows in batches whose delivery failed (export errors). */
  readonly flowsFailed: number;
  /** Batches whose delivery failed. */
  readonly batchesFailed: number;
  /** Flows dropped unsent because the exporter's queue was full. */
  readonly 'queue-full': number;
  /** Flows dropped unsent because the exporter was stopping. */
  readonly stopped: number;
  /** Batches waiting in the exporter's queue now. */
  readonly queuedBatches: number;
}

/** Agent health at one instant; every field is optional so each source gives what it has. */
export interface HealthSnapshot {
  readonly uptimeSeconds?: number;
  /** What needs attention, for people (`no interface attached yet`); absent or empty when all is well. */
  readonly warnings?: readonly string[];
  /** Names of the interfaces attached now. */
  readonly attachedInterfaces?: readonly string[];
  /** Packets and bytes counted by capture. */
  readonly packetsSeen?: number;
  readonly bytesSeen?: number;
  /** Records (partial flows) received from capture. */
  readonly recordsSeen?: number;
  /** Flows in the accounter's cache now. */
  readonly cachedFlows?: number;
  /** Packets lost to a full ring buffer. */
  readonly ringBufferLost?: number;
  /** Kernel map drains put off while the pipeline lagged. */
  readonly deferredDrains?: number;
  /** Packets whose headers could not be parsed (or, reading a capture, packets skipped). */
  readonly parseErrors?: number;
  /** Kernel flow-map inserts that failed. */
  readonly mapUpdateFailures?: number;
  readonly exporters?: readonly ExporterHealth[];
  /** The packet filter in use, as people read it (`none` when every packet is counted). */
  readonly filter?: string;
  /** Packets the filter accepted and rejected. */
  readonly filterAccepted?: number;
  readonly filterRejected?: number;
  /** The address written into every flow as the agent's. */
  readonly agentIp?: string;
  /** TCP health of the flows so far: packets the kernel dropped, retransmitted segments. */
  readonly tcpHealth?: { readonly dropPackets: number; readonly retransSegments: number };
}

/** Where the web view gets health from; undefined while there is none yet. */
export type HealthProvider = () => HealthSnapshot | undefined;
