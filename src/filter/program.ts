/**
 * The one compiled form of a filter, shared by the kernel (bpf/flows.bpf.c interprets it in
 * `filter_packet()`) and the offline evaluator (evaluate.ts): a decision program of at most
 * {@link FILTER_MAX_INSNS} tests over a packet's flow key, its TCP flags and its VLAN tag. Each
 * test jumps forward to another test or ends in a verdict, so a packet takes at most
 * FILTER_MAX_INSNS steps. A one-prefix address test compares with a prefix kept in the program;
 * a test of several prefixes looks the address up in a set (an LPM trie in the kernel, keyed by
 * set id and address). Byte layouts here mirror `struct filter_insn` and
 * `struct filter_program` in bpf/flows.bpf.c: test/ebpf/filter.test.ts runs every filter vector
 * through the kernel program, so a layout that drifts fails there; test/filter/program.test.ts
 * pins the encoding.
 */

/** Tests a program holds at most (the kernel's FILTER_MAX_INSNS). */
export const FILTER_MAX_INSNS = 64;
/** Prefix sets a program uses at most: each address test has its own. */
export const FILTER_MAX_SETS = FILTER_MAX_INSNS;
/** Prefixes in all sets of one program at most (half the kernel trie: two programs fit). */
export const FILTER_MAX_PREFIXES = 512;
/** Bytes of one `struct filter_insn`. */
export const FILTER_INSN_BYTES = 16;
/** Bytes of one `struct filter_prefix`: the address as 4 words, then their masks. */
export const FILTER_PREFIX_BYTES = 32;
/** Offset of the inline prefix table in `struct filter_program`. */
export const FILTER_PREFIXES_OFFSET = 8 + FILTER_MAX_INSNS * FILTER_INSN_BYTES;
/** Bytes of one `struct filter_program`: count (4), pad (4), the tests, the inline prefixes. */
export const FILTER_PROGRAM_BYTES = FILTER_PREFIXES_OFFSET + FILTER_MAX_INSNS * FILTER_PREFIX_BYTES;
/** Bytes of a prefix-trie key: prefix length (u32), set id (1), address (16). */
export const FILTER_PREFIX_KEY_BYTES = 21;

/** Jump target meaning "reject the packet". */
export const TARGET_REJECT = 0xffff;
/** Jump targets from this value on mean "accept", the low bits being a per-rule sampling rate. */
export const TARGET_ACCEPT = 0x8000;
/** Highest per-rule sampling rate a verdict can carry. */
export const MAX_RULE_SAMPLING = 0x7ffe;

/** Test operations (`enum filter_op` in the kernel). */
export const FilterOp = {
  /** Ethernet type after VLAN tags equals `a`. */
  ETHERTYPE: 1,
  /** Transport protocol (after IPv6 extension headers) equals `a`. */
  PROTO: 2,
  /** The address on side `arg` (0 source, 1 destination) is in prefix set `a` (an LPM trie lookup). */
  ADDR: 3,
  /** The port on side `arg` is in `[a, b]`. */
  PORT: 4,
  /** The frame is VLAN tagged and, unless `a` is 0xffffffff, its outer VLAN id equals `a`. */
  VLAN: 5,
  /** ICMP/ICMPv6 type equals `a`. */
  ICMP_TYPE: 6,
  /** ICMP/ICMPv6 code equals `a`. */
  ICMP_CODE: 7,
  /** TCP flags masked by `a` equal `b`. */
  TCP_FLAGS: 8,
  /** Direction (0 ingress, 1 egress) equals `a`. */
  DIRECTION: 9,
  /**
   * The address on side `arg` is in inline prefix `a` of the program: a set of one prefix, tested
   * by four masked word compares instead of a trie lookup.
   */
  PREFIX: 10,
} as const;

/** Value of `a` in a VLAN test that matches any VLAN id. */
export const ANY_VLAN = 0xffffffff;

/** An address prefix: 16 bytes (IPv4 as ::ffff:a.b.c.d, as the flow key stores it) and a length in bits. */
export interface Prefix {
  /** Network bytes; bits past `bits` are zero. */
  readonly bytes: Uint8Array;
  /** Prefix length over the 16-byte form (an IPv4 /24 is 120). */
  readonly bits: number;
}

/** One test of the decision program on the packet. */
export type FilterAtom =
  | { readonly test: 'ethertype'; readonly value: number }
  | { readonly test: 'proto'; readonly value: number }
  | { readonly test: 'addr'; readonly side: Side; readonly prefixes: readonly Prefix[] }
  | { readonly test: 'port'; readonly side: Side; readonly lo: number; readonly hi: number }
  | { readonly test: 'vlan'; readonly id: number | undefined }
  | { readonly test: 'icmp-type'; readonly value: number }
  | { readonly test: 'icmp-code'; readonly value: number }
  | { readonly test: 'tcp-flags'; readonly mask: number; readonly value: number }
  | { readonly test: 'direction'; readonly value: number };

/** Source or destination. */
export type Side = 'src' | 'dst';

/** A boolean combination of tests: what the expression parser and the rules both produce. */
export type Formula =
  | { readonly kind: 'and' | 'or'; readonly left: Formula; readonly right: Formula }
  | { readonly kind: 'not'; readonly operand: Formula }
  | { readonly kind: 'atom'; readonly atom: FilterAtom }
  | { readonly kind: 'const'; readonly value: boolean };

/** A compiled filter: the program's bytes as the kernel reads them, and its prefix sets. */
export interface FilterProgram {
  /** One `struct filter_program` ({@link FILTER_PROGRAM_BYTES}); entry is test 0. */
  readonly code: Buffer;
  /** Number of tests used. */
  readonly insnCount: number;
  /** Prefix set k (of two or more prefixes, tested in the kernel's LPM trie) is `prefixSets[k]`. */
  readonly prefixSets: readonly (readonly Prefix[])[];
  /** Where the filter came from, for the web view and logs. */
  readonly source: FilterSource;
}

/** The text a filter was compiled from. */
export interface FilterSource {
  /** The pcap-filter expression, if any. */
  readonly expression: string | undefined;
  /** Number of FLOW_FILTER_RULES rules, 0 when none. */
  readonly rules: number;
}

/** Field offsets within one `struct filter_insn` (little-endian). */
export const INSN = {
  OP: 0,
  ARG: 1,
  ON_TRUE: 2,
  ON_FALSE: 4,
  A: 8,
  B: 12,
} as const;

/** Side encoding in a test's `arg`. */
export const SIDE_ARG: Record<Side, number> = { src: 0, dst: 1 };

/** Combines formulas with `and` (true when empty). */
export function allOf(parts: readonly Formula[]): Formula {
  if (parts.length === 0) return { kind: 'const', value: true };
  return parts.reduce((left, right) => ({ kind: 'and', left, right }));
}

/** Combines formulas with `or` (false when empty). */
export function anyOf(parts: readonly Formula[]): Formula {
  if (parts.length === 0) return { kind: 'const', value: false };
  return parts.reduce((left, right) => ({ kind: 'or', left, right }));
}

/** A formula of one test. */
export function atom(a: FilterAtom): Formula {
  return { kind: 'atom', atom: a };
}

/**
 * "IP packet of transport protocol `value`" (IPv4 or IPv6). The flow key's transport protocol is
 * 0 for every frame that is not IPv4 or IPv6, so a non-zero protocol needs no Ethernet type test.
 */
export function ipProtocol(value: number): Formula {
  const proto = atom({ test: 'proto', value });
  if (value !== 0) return proto;
  return allOf([
    anyOf([atom({ test: 'ethertype', value: 0x0800 }), atom({ test: 'ethertype', value: 0x86dd })]),
    proto,
  ]);
}
