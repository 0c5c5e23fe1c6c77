/**
 * Text forms of a row's identity fields for the outputs that print them (table, web view, store):
 * the interfaces-crossed list (crossed_if_index, crossed_direction, crossed_count) and the tunnel
 * (tunnel_type, tunnel_id, tunnel_src, tunnel_dst), read in place and written once.
 */
import type { InterfaceNames } from '../model/interfaces.ts';
import { formatIp } from '../model/ip.ts';
import { directionName, tunnelLabel } from '../model/names.ts';
import { V2, V2_MAX_CROSSED } from './v2-layout.ts';

/** Entries used in the list of the row at `o` (bounded by the list's capacity). */
export function crossedCount(bytes: Uint8Array, o: number): number {
  return Math.min(bytes[o + V2.CROSSED_COUNT], V2_MAX_CROSSED);
}

/** Short direction word of the list's text form. */
function directionWord(direction: number): string {
  const name = directionName(direction);
  return name === 'INGRESS' ? 'in' : name === 'EGRESS' ? 'out' : '?';
}

/**
 * The list of the row at `o` as text, in first-seen order: `veth1 in,br0 in,eth0 out` (an
 * interface without a name as `if<index>`); '' when the row has no list.
 */
export function crossedText(bytes: Buffer, o: number, interfaces: InterfaceNames): string {
  const count = crossedCount(bytes, o);
  let text = '';
  for (let k = 0; k < count; k++) {
    const ifIndex = bytes.readUInt32LE(o + V2.CROSSED_IF_INDEX + 4 * k);
    const name = interfaces.nameOf(ifIndex) || `if${ifIndex}`;
    text += `${k === 0 ? '' : ','}${name} ${directionWord(bytes[o + V2.CROSSED_DIRECTION + k])}`;
  }
  return text;
}

/**
 * The tunnel of the row at `o` as text: `VXLAN 42 192.0.2.1>192.0.2.2` (type, VNI or key when
 * there is one, outer source and destination); '' when the flow was not encapsulated.
 */
export function tunnelText(bytes: Buffer, o: number): string {
  const type = bytes[o + V2.TUNNEL_TYPE];
  if (type === 0) return '';
  return tunnelLabel(
    type,
    bytes.readUInt32LE(o + V2.TUNNEL_ID),
    formatIp(bytes, o + V2.TUNNEL_SRC, 0),
    formatIp(bytes, o + V2.TUNNEL_DST, 0),
  );
}
