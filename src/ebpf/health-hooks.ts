/**
 * Where each TCP health feature hooks the kernel, in order of preference: the catalogue the
 * loader (health-programs.ts) walks, taking for each feature the first hook that loads and
 * attaches. Program names are those of bpf/health.bpf.c. Pure data: tests check it without root.
 */

/** A TCP health feature, switched by its own setting. */
export type HealthFeature = 'rtt' | 'retrans' | 'drops';

/** Every health feature, in the order they are loaded and reported. */
export const HEALTH_FEATURES: readonly HealthFeature[] = ['rtt', 'retrans', 'drops'];

/** The setting that switches each feature on (the reference's names where it has them). */
export const HEALTH_FEATURE_SETTING: Readonly<Record<HealthFeature, string>> = {
  rtt: 'ENABLE_RTT',
  retrans: 'ENABLE_TCP_RETRANS',
  drops: 'ENABLE_PKT_DROPS',
};

/**
 * HEALTH_HOOKS: `auto` takes each feature's preferred hook (fentry, else a BTF tracepoint) and
 * falls back down its list; `tracepoint` forces the fallback every feature has, raw tracepoints
 * (read through bpf_probe_read_kernel), for kernels whose typed hooks misbehave and for tests
 * that compare the two.
 */
export const HEALTH_HOOKS_MODES = ['auto', 'tracepoint'] as const;
/** A HEALTH_HOOKS value. */
export type HealthHooksMode = (typeof HEALTH_HOOKS_MODES)[number];

/** One way to hook a feature. */
export interface HealthHook {
  /** Program name in bpf/health.bpf.c (kernels show its first 15 characters). */
  readonly program: string;
  /** The hook as libbpf's section names it. */
  readonly hook: string;
  /** A raw tracepoint: the program reads kernel memory through bpf_probe_read_kernel. */
  readonly raw: boolean;
}

function hook(program: string, section: string): HealthHook {
  return Object.freeze({ program, hook: section, raw: section.startsWith('raw_tp/') });
}

/**
 * Each feature's hooks, preferred first. The `_v1` programs are for kernels whose
 * tcp_retransmit_skb tracepoint has no `err` argument (and fires only for retransmissions sent);
 * on a newer kernel the err-aware program loads first. kfree_skb passes its drop reason from
 * Linux 5.17; before it the drops feature finds no hook.
 */
export const HEALTH_HOOKS: Readonly<Record<HealthFeature, readonly HealthHook[]>> = {
  rtt: [
    hook('flowtap_rtt_fentry', 'fentry/tcp_rcv_established'),
    hook('flowtap_rtt_tp', 'tp_btf/tcp_probe'),
    hook('flowtap_rtt_raw', 'raw_tp/tcp_probe'),
  ],
  retrans: [
    hook('flowtap_retrans_tp', 'tp_btf/tcp_retransmit_skb'),
    hook('flowtap_retrans_tp_v1', 'tp_btf/tcp_retransmit_skb'),
    hook('flowtap_retrans_raw', 'raw_tp/tcp_retransmit_skb'),
    hook('flowtap_retrans_raw_v1', 'raw_tp/tcp_retransmit_skb'),
  ],
  drops: [hook('flowtap_drop_tp', 'tp_btf/kfree_skb'), hook('flowtap_drop_raw', 'raw_tp/kfree_skb')],
};

/** The hooks `mode` lets `feature` try, in order. */
export function hookCandidates(feature: HealthFeature, mode: HealthHooksMode): readonly HealthHook[] {
  const all = HEALTH_HOOKS[feature];
  return mode === 'tracepoint' ? all.filter((h) => h.raw) : all;
}

/** Which TCP health features to run and how to hook them. */
export interface HealthSettings {
  /** Smoothed RTT per flow and the handshake time (ENABLE_RTT). */
  readonly rtt: boolean;
  /** Retransmitted segments and bytes per flow (ENABLE_TCP_RETRANS). */
  readonly retrans: boolean;
  /** Dropped packets and bytes per flow with the latest reason (ENABLE_PKT_DROPS). */
  readonly drops: boolean;
  /** HEALTH_HOOKS. */
  readonly hooks: HealthHooksMode;
}

/** Every feature off. */
export const HEALTH_OFF: HealthSettings = Object.freeze({
  rtt: false,
  retrans: false,
  drops: false,
  hooks: 'auto',
});

/** The features `settings` switches on, in {@link HEALTH_FEATURES} order. */
export function enabledFeatures(settings: HealthSettings): HealthFeature[] {
  return HEALTH_FEATURES.filter((f) => settings[f]);
}
