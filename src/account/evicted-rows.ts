/**
 * What every evicted batch goes through before the sinks, in `run` and `read` alike: the agent's
 * address written into each row (the kernel and the capture parsers leave it zero), then, in
 * bidirectional mode, the pairing of the two directions of each conversation (biflow.ts). The
 * same pass counts the flows that carry issue 13's identity fields, sums their TCP health
 * (health-sums.ts), and with DNS tracking on counts what their DNS sections hold, for /metrics.
 */
import { type RecordBatch, rowHasHealth } from '../codec/record-batch.ts';
import { V2, V2_MAX_CROSSED, V2_RECORD_BYTES } from '../codec/v2-layout.ts';
import { IP_BYTES } from '../model/ip.ts';
import { pairBiflows } from './biflow.ts';
import { DnsCounts } from './dns-counts.ts';
import { HealthSums } from './health-sums.ts';

/** Settings of an {@link EvictedRows} stage. */
export interface EvictedRowsOptions {
  /** The agent's address, 16 bytes (IPv4 mapped), written into every row's agent_ip. */
  readonly agentIp: Uint8Array;
  /** Pair the directions of each conversation into bidirectional records. */
  readonly bidirectional: boolean;
  /** DNS is tracked: count what the rows' DNS sections hold. */
  readonly dnsTracking?: boolean;
}

/** Flows counted by what they carry, as they leave accounting. */
export interface IdentityCounts {
  /** Flows that arrived in a tunnel, by tunnel type number (1 VXLAN, 2 Geneve, 3 GRE, 4 IP-in-IP). */
  tunneled: Record<number, number>;
  /** Flows with an 802.1Q/802.1ad VLAN id. */
  vlanTagged: number;
  /** Flows seen on more than one interface (their records list every one). */
  multiInterface: number;
  /** Bidirectional records holding both directions. */
  biflowsPaired: number;
  /** Bidirectional records of one-way traffic (no reverse seen in the window). */
  biflowsOneWay: number;
}

/** The stage: agent IP, counts, and (when on) bidirectional pairing of evicted batches. */
export class EvictedRows {
  /** What the evicted flows carried so far. */
  readonly counts: IdentityCounts = {
    tunneled: {},
    vlanTagged: 0,
    multiInterface: 0,
    biflowsPaired: 0,
    biflowsOneWay: 0,
  };
  /** The TCP health of the evicted flows so far. */
  readonly healthSums = new HealthSums();

  /** What the evicted flows' DNS sections held. */
  readonly dns = new DnsCounts();

  constructor(readonly options: EvictedRowsOptions) {}

  /**
   * `batch` (an evicted batch, owned by the caller: written in place) with the agent IP in every
   * row, paired into bidirectional records when the option is on.
   */
  finish(batch: RecordBatch): RecordBatch {
    // Before pairing, which merges the DNS of a conversation's two directions into one record.
    if (this.options.dnsTracking === true) this.dns.count(batch);
    this.#stampAndCount(batch);
    if (!this.options.bidirectional) return batch;
    const paired = pairBiflows(batch);
    // Each pair took two rows into one record; the rest are one-way.
    const pairs = batch.count - paired.count;
    this.counts.biflowsPaired += pairs;
    this.counts.biflowsOneWay += paired.count - pairs;
    return paired;
  }

  #stampAndCount(batch: RecordBatch): void {
    const b = batch.bytes;
    const agentIp = this.options.agentIp;
    const counts = this.counts;
    for (let i = 0, o = 0; i < batch.count; i++, o += V2_RECORD_BYTES) {
      for (let k = 0; k < IP_BYTES; k++) b[o + V2.AGENT_IP + k] = agentIp[k];
      const tunnel = b[o + V2.TUNNEL_TYPE];
      if (tunnel !== 0) counts.tunneled[tunnel] = (counts.tunneled[tunnel] ?? 0) + 1;
      if ((b[o + V2.VLAN_OUTER] | b[o + V2.VLAN_OUTER + 1]) !== 0) counts.vlanTagged++;
      if (Math.min(b[o + V2.CROSSED_COUNT], V2_MAX_CROSSED) > 1) counts.multiInterface++;
      if (rowHasHealth(b, o)) this.healthSums.add(b, o);
    }
  }
}
