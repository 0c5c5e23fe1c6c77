/**
 * Interfaces crossed in a capture of several interfaces (DEDUPER=firstCome; docs/flow-key.md,
 * "pcap"): the same packet appears once per interface it crossed. As the kernel program does, a
 * flow is recognised by its key without interface and direction (and without MACs when IP); the interface (and
 * direction) of its first packet in the capture counts it, and a copy met on any other interface
 * only adds that interface to the flow's list.
 *
 * A copy on a new interface becomes a row of 0 packets and 0 bytes that carries the counting
 * interface's key and the two-entry list, so the accounter's merge (src/codec/merge-rule.ts)
 * unions it into the flow; later copies there are dropped. One string per packet is made for the
 * lookup, only while the capture has declared more than one interface.
 */
import { V2, V2_KEY_BYTES, V2_MAX_CROSSED } from '../../codec/v2-layout.ts';

/** What {@link PacketDeduper.classify} decided for a packet's row. */
export const DedupVerdict = {
  /** The row counts: the packet was met on its flow's counting interface. */
  COUNT: 0,
  /** The row now lists a new interface of the flow and counts nothing. */
  LIST_ONLY: 1,
  /** The packet's interface is already listed (or the list is full): drop the row. */
  DROP: 2,
} as const;

/** Flows remembered at most; beyond, the table starts again (a flow may then count elsewhere). */
export const MAX_DEDUP_FLOWS = 1 << 20;

const MAC_BYTES = 6;
const ETH_P_IPV4 = 0x0800;
const ETH_P_IPV6 = 0x86dd;

/** A flow's counting interface, its MACs, and the interfaces listed so far (ifIndex * 2 + direction). */
interface FlowOwner {
  ifIndex: number;
  direction: number;
  macs: Buffer;
  listed: number[];
}

/** First-come dedup of one capture's packets across its interfaces. */
export class PacketDeduper {
  readonly #owners = new Map<string, FlowOwner>();
  readonly #key = Buffer.alloc(V2_KEY_BYTES);
  /** Packets met again on another interface of their flow (not counted again). */
  duplicates = 0;

  /**
   * Decides what the parsed packet row at `row` of `out` (key, interface and direction written)
   * is; a LIST_ONLY row is rewritten in place: the flow's counting key, no counters, the list.
   */
  classify(out: Buffer, row: number): number {
    const key = this.#key;
    out.copy(key, 0, row, row + V2_KEY_BYTES);
    // A frame without addresses (ARP) keeps its MACs, as in the kernel: they tell request from reply.
    const etype = key.readUInt16LE(V2.ETH_PROTOCOL);
    if (etype === ETH_P_IPV4 || etype === ETH_P_IPV6) key.fill(0, V2.SRC_MAC, V2.DST_MAC + MAC_BYTES);
    key[V2.DIRECTION] = 0;
    key.writeUInt32LE(0, V2.IF_INDEX);
    const id = key.toString('latin1');
    const ifIndex = out.readUInt32LE(row + V2.IF_INDEX);
    const direction = out[row + V2.DIRECTION];
    const owner = this.#owners.get(id);
    if (owner === undefined) {
      if (this.#owners.size >= MAX_DEDUP_FLOWS) this.#owners.clear();
      const macs = Buffer.from(out.subarray(row + V2.SRC_MAC, row + V2.DST_MAC + MAC_BYTES));
      this.#owners.set(id, { ifIndex, direction, macs, listed: [ifIndex * 2 + direction] });
      return DedupVerdict.COUNT;
    }
    if (owner.ifIndex === ifIndex && owner.direction === direction) return DedupVerdict.COUNT;
    this.duplicates++;
    const hop = ifIndex * 2 + direction;
    if (owner.listed.includes(hop) || owner.listed.length >= V2_MAX_CROSSED) return DedupVerdict.DROP;
    owner.listed.push(hop);
    owner.macs.copy(out, row + V2.SRC_MAC);
    out.writeUInt32LE(owner.ifIndex, row + V2.IF_INDEX);
    out[row + V2.DIRECTION] = owner.direction;
    out.writeUInt32LE(owner.ifIndex, row + V2.CROSSED_IF_INDEX);
    out[row + V2.CROSSED_DIRECTION] = owner.direction;
    out.writeUInt32LE(ifIndex, row + V2.CROSSED_IF_INDEX + 4);
    out[row + V2.CROSSED_DIRECTION + 1] = direction;
    out[row + V2.CROSSED_COUNT] = 2;
    return DedupVerdict.LIST_ONLY;
  }
}
