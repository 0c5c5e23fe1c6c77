/**
 * The offline evaluator: runs a compiled filter program (program.ts) on a parsed packet exactly
 * as `filter_packet()` in bpf/flows.bpf.c does, so `flowtap read` and the kernel agree packet for
 * packet. The packet is a v2 row (flow key, TCP flags; frame-parser.ts fills it) and the outer
 * VLAN id. No allocation per packet.
 */
import { V2 } from '../codec/v2-layout.ts';
import {
  ANY_VLAN,
  FILTER_INSN_BYTES,
  FILTER_MAX_INSNS,
  FILTER_PREFIX_BYTES,
  FILTER_PREFIXES_OFFSET,
  FilterOp,
  type FilterProgram,
  INSN,
  type Prefix,
  TARGET_ACCEPT,
  TARGET_REJECT,
} from './program.ts';

/** `vlanId` of an untagged frame. */
export const NO_VLAN = -1;
/** Verdict: the packet is rejected. */
export const VERDICT_REJECT = 0;

/**
 * Runs `program` on the row at `row` of `rows` (a frame with outer VLAN id `vlanId`, or
 * {@link NO_VLAN}). Returns {@link VERDICT_REJECT}, or the accepting rule's sampling rate
 * (1 = count every packet).
 */
export function filterVerdict(program: FilterProgram, rows: Uint8Array, row: number, vlanId: number): number {
  const code = program.code;
  let pc = 0;
  for (let step = 0; step < FILTER_MAX_INSNS; step++) {
    const at = 8 + pc * FILTER_INSN_BYTES;
    const a = code.readUInt32LE(at + INSN.A);
    const arg = code[at + INSN.ARG];
    let result: boolean;
    switch (code[at + INSN.OP]) {
      case FilterOp.ETHERTYPE:
        result = (rows[row + V2.ETH_PROTOCOL] | (rows[row + V2.ETH_PROTOCOL + 1] << 8)) === a;
        break;
      case FilterOp.PROTO:
        result = rows[row + V2.TRANSPORT_PROTOCOL] === a;
        break;
      case FilterOp.ADDR:
        result = inPrefixSet(program.prefixSets[a], rows, row + (arg === 0 ? V2.SRC_ADDR : V2.DST_ADDR));
        break;
      case FilterOp.PORT: {
        const off = row + (arg === 0 ? V2.SRC_PORT : V2.DST_PORT);
        const port = rows[off] | (rows[off + 1] << 8);
        result = port >= a && port <= code.readUInt32LE(at + INSN.B);
        break;
      }
      case FilterOp.VLAN:
        result = vlanId !== NO_VLAN && (a === ANY_VLAN || vlanId === a);
        break;
      case FilterOp.ICMP_TYPE:
        result = rows[row + V2.ICMP_TYPE] === a;
        break;
      case FilterOp.ICMP_CODE:
        result = rows[row + V2.ICMP_CODE] === a;
        break;
      case FilterOp.TCP_FLAGS: {
        const flags = rows[row + V2.TCP_FLAGS] | (rows[row + V2.TCP_FLAGS + 1] << 8);
        result = (flags & a) === code.readUInt32LE(at + INSN.B);
        break;
      }
      case FilterOp.DIRECTION:
        result = rows[row + V2.DIRECTION] === a;
        break;
      case FilterOp.PREFIX: {
        const addr = row + (arg === 0 ? V2.SRC_ADDR : V2.DST_ADDR);
        const prefix = FILTER_PREFIXES_OFFSET + a * FILTER_PREFIX_BYTES;
        result = true;
        for (let i = 0; i < 16 && result; i++)
          result = (rows[addr + i] & code[prefix + 16 + i]) === code[prefix + i];
        break;
      }
      default:
        result = false;
    }
    const target = code.readUInt16LE(at + (result ? INSN.ON_TRUE : INSN.ON_FALSE));
    if (target === TARGET_REJECT) return VERDICT_REJECT;
    if (target >= TARGET_ACCEPT) return Math.max(1, target - TARGET_ACCEPT);
    pc = target;
  }
  // The compiler only jumps forward, so this is reached only by a damaged program: as the kernel, reject.
  return VERDICT_REJECT;
}

function inPrefixSet(prefixes: readonly Prefix[] | undefined, rows: Uint8Array, addr: number): boolean {
  if (!prefixes) return false;
  for (const prefix of prefixes) {
    let bit = 0;
    for (; bit + 8 <= prefix.bits; bit += 8) if (rows[addr + (bit >> 3)] !== prefix.bytes[bit >> 3]) break;
    if (bit + 8 <= prefix.bits) continue;
    const rest = prefix.bits - bit;
    if (rest === 0) return true;
    const mask = (0xff << (8 - rest)) & 0xff;
    if ((rows[addr + (bit >> 3)] & mask) === prefix.bytes[bit >> 3]) return true;
  }
  return false;
}
