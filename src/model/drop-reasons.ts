/**
 * Names of the kernel's packet-drop reasons (`enum skb_drop_reason`) and TCP states, as one
 * running kernel spells them. The tables come from that kernel's BTF (src/ebpf/drop-reasons.ts
 * reads them at start), so reasons a newer kernel adds get their names without a flowtap
 * release; this module only holds them and says how a value is named.
 */

/** The prefix every real drop reason carries in the kernel (`SKB_DROP_REASON_NETFILTER_DROP`). */
export const SKB_DROP_REASON_PREFIX = 'SKB_DROP_REASON_';

/**
 * TCP states of include/net/tcp_states.h, used when the kernel exposes no BTF. The values are a
 * stable ABI (they are what /proc/net/tcp's `st` column, inet_diag and the uapi `BPF_TCP_*` enum
 * of include/uapi/linux/bpf.h carry), so a kernel without BTF numbers its states this way;
 * TCP_NEW_SYN_RECV came with Linux 4.1 and TCP_BOUND_INACTIVE with 6.5.
 */
export const STABLE_TCP_STATES: ReadonlyMap<number, string> = new Map([
  [1, 'TCP_ESTABLISHED'],
  [2, 'TCP_SYN_SENT'],
  [3, 'TCP_SYN_RECV'],
  [4, 'TCP_FIN_WAIT1'],
  [5, 'TCP_FIN_WAIT2'],
  [6, 'TCP_TIME_WAIT'],
  [7, 'TCP_CLOSE'],
  [8, 'TCP_CLOSE_WAIT'],
  [9, 'TCP_LAST_ACK'],
  [10, 'TCP_LISTEN'],
  [11, 'TCP_CLOSING'],
  [12, 'TCP_NEW_SYN_RECV'],
  [13, 'TCP_BOUND_INACTIVE'],
]);

/**
 * How drop reasons and TCP states are named. A drop reason has two spellings:
 * - `nameOf(cause)`: the short name, the kernel's enumerator without `SKB_DROP_REASON_`
 *   (`NETFILTER_DROP`), for people (table, web view, metrics labels), where the prefix repeats on
 *   every line and says nothing; enumerators without the prefix (`SKB_CONSUMED`) keep their name.
 * - `kernelNameOf(cause)`: the enumerator as the kernel spells it (`SKB_DROP_REASON_NETFILTER_DROP`),
 *   for the JSON field `PktDropLatestDropCause`, where netobserv's agent writes that form and
 *   consumers of its JSON match on it.
 * A value the table does not hold is `UNKNOWN_<n>` in both; without a table (no BTF) every
 * reason is its decimal number.
 */
export class DropReasonNames {
  readonly #reasons: ReadonlyMap<number, string> | undefined;
  readonly #tcpStates: ReadonlyMap<number, string>;

  /**
   * @param reasons drop-reason value → enumerator name as the kernel spells it; undefined when
   *   the kernel's table could not be read (names are then numbers).
   * @param tcpStates TCP state value → `TCP_ESTABLISHED`...
   */
  constructor(
    reasons: ReadonlyMap<number, string> | undefined,
    tcpStates: ReadonlyMap<number, string> = STABLE_TCP_STATES,
  ) {
    this.#reasons = reasons;
    this.#tcpStates = tcpStates;
  }

  /** Whether drop reasons have names (the kernel's table was read). */
  get hasReasonNames(): boolean {
    return this.#reasons !== undefined;
  }

  /** Number of drop reasons named. */
  get reasonCount(): number {
    return this.#reasons?.size ?? 0;
  }

  /** Short name of a drop reason: `NETFILTER_DROP`; `UNKNOWN_<n>`; `<n>` without a table. */
  nameOf(cause: number): string {
    const name = this.kernelNameOf(cause);
    return name.startsWith(SKB_DROP_REASON_PREFIX) ? name.slice(SKB_DROP_REASON_PREFIX.length) : name;
  }

  /** The kernel's enumerator: `SKB_DROP_REASON_NETFILTER_DROP`; `UNKNOWN_<n>`; `<n>` without a table. */
  kernelNameOf(cause: number): string {
    if (this.#reasons === undefined) return String(cause);
    return this.#reasons.get(cause) ?? `UNKNOWN_${cause}`;
  }

  /** `TCP_ESTABLISHED`...; `UNKNOWN_<n>` for a state the table does not hold (0: no socket). */
  tcpStateName(state: number): string {
    return this.#tcpStates.get(state) ?? `UNKNOWN_${state}`;
  }
}

/** Names without any kernel table: drop reasons as numbers, TCP states from the stable list. */
export const NUMERIC_DROP_REASONS = new DropReasonNames(undefined);

/**
 * Where an output gets its names, asked when the first flow with a drop is written: reading the
 * kernel's table costs tens of milliseconds, which a command whose flows have no drops (`read`
 * of a capture) need not pay.
 */
export type DropReasonSource = () => DropReasonNames;
