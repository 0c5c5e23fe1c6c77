/**
 * Rows of the kernel's dedup mode made whole (DEDUPER=firstCome; docs/flow-key.md, "One packet,
 * several interfaces"). The kernel looks flows up by a key without MACs, interface and direction,
 * and keeps those of the flow's counting interface in the value (`dedup_src_mac`, `dedup_dst_mac`,
 * crossed entry 0); the map drain and the ring-buffer reader put them back into the key here, so
 * every row user space sees has a real key and zero dedup MACs.
 */
import { V2, V2_MAX_CROSSED } from '../codec/v2-layout.ts';

const MAC_BYTES = 6;

/** Moves the dedup MACs and crossed entry 0 of the row at byte `row` of `bytes` into its key. */
export function restoreDedupKey(bytes: Buffer, row: number): void {
  bytes.copy(bytes, row + V2.SRC_MAC, row + V2.DEDUP_SRC_MAC, row + V2.DEDUP_SRC_MAC + MAC_BYTES);
  bytes.copy(bytes, row + V2.DST_MAC, row + V2.DEDUP_DST_MAC, row + V2.DEDUP_DST_MAC + MAC_BYTES);
  bytes.fill(0, row + V2.DEDUP_SRC_MAC, row + V2.DEDUP_DST_MAC + MAC_BYTES);
  bytes.writeUInt32LE(bytes.readUInt32LE(row + V2.CROSSED_IF_INDEX), row + V2.IF_INDEX);
  bytes[row + V2.DIRECTION] = bytes[row + V2.CROSSED_DIRECTION];
}

/**
 * Makes the crossed list of a shared-map entry a clean list: the kernel claims a slot by swapping
 * its interface index from 0 and raises the count after, so a row drained at that instant may
 * have a slot filled beyond the count, and two CPUs listing one interface at once list it twice.
 * Keeps the filled slots in slot order, each (interface, direction) once, and sets the count.
 */
export function compactCrossed(bytes: Buffer, row: number): void {
  const ifAt = row + V2.CROSSED_IF_INDEX;
  const dirAt = row + V2.CROSSED_DIRECTION;
  let n = 0;
  for (let i = 0; i < V2_MAX_CROSSED; i++) {
    const ifIndex = bytes.readUInt32LE(ifAt + 4 * i);
    const direction = bytes[dirAt + i];
    if (ifIndex === 0) continue;
    let seen = false;
    for (let j = 0; j < n && !seen; j++) {
      seen = bytes.readUInt32LE(ifAt + 4 * j) === ifIndex && bytes[dirAt + j] === direction;
    }
    if (seen) continue;
    bytes.writeUInt32LE(ifIndex, ifAt + 4 * n);
    bytes[dirAt + n] = direction;
    n++;
  }
  for (let i = n; i < V2_MAX_CROSSED; i++) {
    bytes.writeUInt32LE(0, ifAt + 4 * i);
    bytes[dirAt + i] = 0;
  }
  bytes[row + V2.CROSSED_COUNT] = n;
}
