/**
 * Reads the names of the running kernel's drop reasons and TCP states from its BTF, once at
 * start: `enum skb_drop_reason` (named) and the anonymous enum of include/net/tcp_states.h (the
 * one whose first enumerator is `TCP_ESTABLISHED`). A kernel without BTF, or a BTF flowtap
 * cannot read, leaves drop reasons as numbers and TCP states from the stable list, with one
 * warning; nothing else depends on it.
 */
import { readFileSync } from 'node:fs';
import { DropReasonNames, STABLE_TCP_STATES } from '../model/drop-reasons.ts';
import { readBtfEnums, VMLINUX_BTF_PATH } from './btf.ts';

/** Name of the kernel's drop-reason enum (include/net/dropreason-core.h, Linux 5.17+). */
export const SKB_DROP_REASON_ENUM = 'skb_drop_reason';
/** First enumerator of the kernel's (anonymous) TCP state enum. */
const TCP_STATE_FIRST = 'TCP_ESTABLISHED';
/** Enumerators that bound their enum rather than name a value. */
const SENTINELS = new Set(['SKB_DROP_REASON_MAX', 'TCP_MAX_STATES']);

/** Where a warning about the names goes (the agent's logger). */
export type DropReasonWarning = (message: string) => void;

/**
 * The names of `btfPath`'s drop reasons and TCP states. Never throws: a missing or unreadable
 * file, or a BTF without `enum skb_drop_reason` (Linux before 5.17), gives numbers for drop
 * reasons and calls `warn` once saying why.
 */
export function loadDropReasons(
  btfPath: string = VMLINUX_BTF_PATH,
  warn?: DropReasonWarning,
): DropReasonNames {
  let bytes: Buffer;
  try {
    bytes = readFileSync(btfPath);
  } catch (err) {
    warn?.(
      `drop reasons are shown as numbers: the kernel's BTF (${btfPath}) cannot be read ` +
        `(${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); a kernel built with CONFIG_DEBUG_INFO_BTF=y names them`,
    );
    return new DropReasonNames(undefined);
  }
  return dropReasonsFromBtf(bytes, btfPath, warn);
}

/** {@link loadDropReasons} on BTF bytes already read; `source` names them in the warning. */
export function dropReasonsFromBtf(
  bytes: Uint8Array,
  source: string,
  warn?: DropReasonWarning,
): DropReasonNames {
  let reasons: Map<number, string> | undefined;
  let tcpStates: Map<number, string> | undefined;
  try {
    for (const e of readBtfEnums(
      bytes,
      (name, first) => name === SKB_DROP_REASON_ENUM || (name === '' && first === TCP_STATE_FIRST),
    )) {
      if (e.name === SKB_DROP_REASON_ENUM) reasons ??= enumTable(e.members);
      else tcpStates ??= enumTable(e.members);
    }
  } catch (err) {
    warn?.(`drop reasons are shown as numbers: ${(err as Error).message}`);
    return new DropReasonNames(undefined);
  }
  if (reasons === undefined) {
    warn?.(
      `drop reasons are shown as numbers: ${source} has no enum ${SKB_DROP_REASON_ENUM} (the kernel names its drop reasons from Linux 5.17)`,
    );
  }
  return new DropReasonNames(reasons, tcpStates ?? STABLE_TCP_STATES);
}

let running: DropReasonNames | undefined;

/**
 * The running kernel's names ({@link loadDropReasons} of {@link VMLINUX_BTF_PATH}), read on the
 * first call only, so every output of a process shares one table and at most one warning.
 */
export function runningKernelDropReasons(warn?: DropReasonWarning): DropReasonNames {
  running ??= loadDropReasons(VMLINUX_BTF_PATH, warn);
  return running;
}

function enumTable(members: readonly { name: string; value: bigint }[]): Map<number, string> {
  const table = new Map<number, string>();
  for (const m of members) {
    // Drop reasons and TCP states are u32 on every path that reports them (the tracepoint's
    // `reason`, the record's cause field); a value beyond that cannot be met.
    if (SENTINELS.has(m.name) || m.value < 0n || m.value > 0xffffffffn) continue;
    const value = Number(m.value);
    if (!table.has(value)) table.set(value, m.name);
  }
  return table;
}
