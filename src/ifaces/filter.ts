/**
 * Which interfaces flowtap attaches to: include and exclude lists whose entries are exact names or
 * `/regex/` (the reference's INTERFACES / EXCLUDE_INTERFACES). Exclusion wins; an empty include
 * list means every interface.
 */

/** One list entry, compiled. */
export type InterfacePattern = { kind: 'name'; name: string } | { kind: 'regex'; regex: RegExp };

/** Compiles `/regex/` entries to RegExp and keeps others as exact names; throws SyntaxError on a bad regex. */
export function parseInterfacePattern(entry: string): InterfacePattern {
  const text = entry.trim();
  if (text.length >= 2 && text.startsWith('/') && text.endsWith('/')) {
    return { kind: 'regex', regex: new RegExp(text.slice(1, -1)) };
  }
  return { kind: 'name', name: text };
}

function matchesAny(patterns: readonly InterfacePattern[], name: string): boolean {
  for (const p of patterns) {
    if (p.kind === 'name' ? p.name === name : p.regex.test(name)) return true;
  }
  return false;
}

/** Decides which interface names are selected. */
export class InterfaceFilter {
  readonly #include: readonly InterfacePattern[];
  readonly #exclude: readonly InterfacePattern[];

  /** `include` empty selects every interface that `exclude` does not name. */
  constructor(include: readonly string[], exclude: readonly string[]) {
    this.#include = include.map(parseInterfacePattern);
    this.#exclude = exclude.map(parseInterfacePattern);
  }

  /** True when `name` is included (or there is no include list) and not excluded. */
  allows(name: string): boolean {
    if (matchesAny(this.#exclude, name)) return false;
    return this.#include.length === 0 || matchesAny(this.#include, name);
  }
}
