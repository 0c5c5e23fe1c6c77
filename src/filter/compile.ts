/**
 * Compiles formulas (from an expression, from rules, or both) into the one decision program the
 * kernel and the offline evaluator run (program.ts). Each test of the formula becomes one
 * instruction; `and`, `or` and `not` become jumps, built from the last test back to the first so
 * every jump goes forward and a packet meets each test at most once.
 */
import { FilterSyntaxError } from '../errors.ts';
import {
  ANY_VLAN,
  FILTER_INSN_BYTES,
  FILTER_MAX_INSNS,
  FILTER_MAX_PREFIXES,
  FILTER_MAX_SETS,
  FILTER_PREFIX_BYTES,
  FILTER_PREFIXES_OFFSET,
  FILTER_PROGRAM_BYTES,
  type FilterAtom,
  FilterOp,
  type FilterProgram,
  type FilterSource,
  type Formula,
  INSN,
  MAX_RULE_SAMPLING,
  type Prefix,
  SIDE_ARG,
  TARGET_ACCEPT,
  TARGET_REJECT,
} from './program.ts';

/** One rule: when `formula` matches, the packet is accepted (1 in `sampling`) or rejected. */
export interface CompiledRule {
  /** What the rule matches. */
  readonly formula: Formula;
  /** Accept or reject what it matches. */
  readonly accept: boolean;
  /** Per-rule sampling of accepted packets (1 = every packet). */
  readonly sampling: number;
}

/** What a program is compiled from: an expression, rules, or both (the expression first). */
export interface FilterInput {
  /** The expression's text and formula. */
  readonly expression?: { readonly text: string; readonly formula: Formula };
  /** Rules tried in order; the first that matches decides. */
  readonly rules?: readonly CompiledRule[];
  /** Verdict when rules are given and none matches. */
  readonly unmatchedAccept?: boolean;
}

interface Insn {
  op: number;
  arg: number;
  a: number;
  b: number;
  onTrue: number;
  onFalse: number;
}

/** Target values from here on are verdicts; lower ones are instruction ids while building. */
const isVerdict = (target: number) => target >= TARGET_ACCEPT;

function acceptTarget(sampling: number): number {
  return TARGET_ACCEPT + (sampling <= 1 ? 0 : Math.min(sampling, MAX_RULE_SAMPLING));
}

/** Compiles `input` into a program; throws FilterSyntaxError when it needs more than the kernel holds. */
export function compileFilter(input: FilterInput): FilterProgram {
  const builder = new ProgramBuilder(input.expression?.text ?? 'FLOW_FILTER_RULES');
  let entry = TARGET_ACCEPT;
  const rules = input.rules ?? [];
  if (rules.length > 0) {
    entry = input.unmatchedAccept ? TARGET_ACCEPT : TARGET_REJECT;
    for (let i = rules.length - 1; i >= 0; i--) {
      const rule = rules[i];
      const verdict = rule.accept ? acceptTarget(rule.sampling) : TARGET_REJECT;
      entry = builder.emit(rule.formula, verdict, entry);
    }
  }
  if (input.expression) entry = builder.emit(input.expression.formula, entry, TARGET_REJECT);
  const source: FilterSource = { expression: input.expression?.text, rules: rules.length };
  return builder.finish(entry, source);
}

class ProgramBuilder {
  readonly #insns: Insn[] = [];
  readonly #sets: Prefix[][] = [];
  readonly #setIds = new Map<string, number>();
  readonly #inline: Prefix[] = [];
  readonly #inlineIds = new Map<string, number>();
  #prefixCount = 0;

  constructor(readonly label: string) {}

  /** Emits `formula` jumping to `onTrue` when it holds and `onFalse` otherwise; returns its entry. */
  emit(formula: Formula, onTrue: number, onFalse: number): number {
    switch (formula.kind) {
      case 'const':
        return formula.value ? onTrue : onFalse;
      case 'not':
        return this.emit(formula.operand, onFalse, onTrue);
      case 'and':
        return this.emit(formula.left, this.emit(formula.right, onTrue, onFalse), onFalse);
      case 'or':
        return this.emit(formula.left, onTrue, this.emit(formula.right, onTrue, onFalse));
      case 'atom':
        return this.#push({ ...this.#encode(formula.atom), onTrue, onFalse });
    }
  }

  #encode(a: FilterAtom): Omit<Insn, 'onTrue' | 'onFalse'> {
    switch (a.test) {
      case 'ethertype':
        return { op: FilterOp.ETHERTYPE, arg: 0, a: a.value, b: 0 };
      case 'proto':
        return { op: FilterOp.PROTO, arg: 0, a: a.value, b: 0 };
      case 'addr':
        if (a.prefixes.length === 1) {
          return { op: FilterOp.PREFIX, arg: SIDE_ARG[a.side], a: this.#inlineId(a.prefixes[0]), b: 0 };
        }
        return { op: FilterOp.ADDR, arg: SIDE_ARG[a.side], a: this.#setId(a.prefixes), b: 0 };
      case 'port':
        return { op: FilterOp.PORT, arg: SIDE_ARG[a.side], a: a.lo, b: a.hi };
      case 'vlan':
        return { op: FilterOp.VLAN, arg: 0, a: a.id ?? ANY_VLAN, b: 0 };
      case 'icmp-type':
        return { op: FilterOp.ICMP_TYPE, arg: 0, a: a.value, b: 0 };
      case 'icmp-code':
        return { op: FilterOp.ICMP_CODE, arg: 0, a: a.value, b: 0 };
      case 'tcp-flags':
        return { op: FilterOp.TCP_FLAGS, arg: 0, a: a.mask, b: a.value };
      case 'direction':
        return { op: FilterOp.DIRECTION, arg: 0, a: a.value, b: 0 };
    }
  }

  /** Index of `prefix` in the program's inline prefix table (one entry per distinct prefix). */
  #inlineId(prefix: Prefix): number {
    const key = `${Buffer.from(prefix.bytes).toString('hex')}/${prefix.bits}`;
    const known = this.#inlineIds.get(key);
    if (known !== undefined) return known;
    // At most one prefix per test, and the tests are bounded by FILTER_MAX_INSNS.
    this.#inline.push(prefix);
    this.#inlineIds.set(key, this.#inline.length - 1);
    return this.#inline.length - 1;
  }

  #setId(prefixes: readonly Prefix[]): number {
    const key = prefixes.map((p) => `${Buffer.from(p.bytes).toString('hex')}/${p.bits}`).join(',');
    const known = this.#setIds.get(key);
    if (known !== undefined) return known;
    this.#prefixCount += prefixes.length;
    if (this.#sets.length >= FILTER_MAX_SETS || this.#prefixCount > FILTER_MAX_PREFIXES) {
      throw new FilterSyntaxError(
        this.label,
        -1,
        `more than ${FILTER_MAX_PREFIXES} prefixes: merge networks into wider CIDRs`,
      );
    }
    this.#sets.push([...prefixes]);
    this.#setIds.set(key, this.#sets.length - 1);
    return this.#sets.length - 1;
  }

  #push(insn: Insn): number {
    if (this.#insns.length >= FILTER_MAX_INSNS) {
      throw new FilterSyntaxError(
        this.label,
        -1,
        `the filter needs more than ${FILTER_MAX_INSNS} tests, the most the kernel program evaluates: ` +
          'simplify it (portrange instead of many ports, wider networks, fewer rules)',
      );
    }
    this.#insns.push(insn);
    return this.#insns.length - 1;
  }

  /** Lays the tests out entry first: the instruction built last becomes index 0. */
  finish(entry: number, source: FilterSource): FilterProgram {
    if (isVerdict(entry)) {
      // A constant filter still needs one test for the kernel to start at: both ways end the same.
      this.#insns.length = 0;
      this.#push({ op: FilterOp.ETHERTYPE, arg: 0, a: 0, b: 0, onTrue: entry, onFalse: entry });
      entry = 0;
    }
    // Jumps only go to tests built earlier, so descending build order keeps every jump forward.
    const reachable = new Set<number>();
    const pending = [entry];
    while (pending.length > 0) {
      const id = pending.pop() as number;
      if (isVerdict(id) || reachable.has(id)) continue;
      reachable.add(id);
      pending.push(this.#insns[id].onTrue, this.#insns[id].onFalse);
    }
    const order = [...reachable].sort((x, y) => y - x);
    const indexOf = new Map(order.map((id, i) => [id, i]));
    const index = (target: number) => (isVerdict(target) ? target : (indexOf.get(target) as number));
    const used = order.length;
    const code = Buffer.alloc(FILTER_PROGRAM_BYTES);
    code.writeUInt32LE(used, 0);
    for (const id of order) {
      const insn = this.#insns[id];
      const at = 8 + index(id) * FILTER_INSN_BYTES;
      code.writeUInt8(insn.op, at + INSN.OP);
      code.writeUInt8(insn.arg, at + INSN.ARG);
      code.writeUInt16LE(index(insn.onTrue), at + INSN.ON_TRUE);
      code.writeUInt16LE(index(insn.onFalse), at + INSN.ON_FALSE);
      code.writeUInt32LE(insn.a >>> 0, at + INSN.A);
      code.writeUInt32LE(insn.b >>> 0, at + INSN.B);
    }
    this.#inline.forEach((prefix, i) => {
      const at = FILTER_PREFIXES_OFFSET + i * FILTER_PREFIX_BYTES;
      for (let byte = 0; byte < 16; byte++) {
        const bits = Math.max(0, Math.min(8, prefix.bits - byte * 8));
        const mask = (0xff00 >> bits) & 0xff;
        code[at + 16 + byte] = mask;
        code[at + byte] = prefix.bytes[byte] & mask;
      }
    });
    return Object.freeze({ code, insnCount: used, prefixSets: this.#sets, source });
  }
}
