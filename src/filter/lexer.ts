/**
 * Splits a filter expression (the pcap-filter subset of docs/flow-key.md) into tokens that remember
 * where they start, so every error can point at the character that caused it.
 */
import { FilterSyntaxError } from '../errors.ts';

/** One token: an operator or parenthesis, or a word (keyword, number, address, range). */
export interface FilterToken {
  /** `(`, `)`, `!`, `&&`, `||`, or `word`. */
  readonly type: '(' | ')' | '!' | '&&' | '||' | 'word';
  /** The text as written. */
  readonly text: string;
  /** 0-based offset of its first character in the expression. */
  readonly position: number;
}

/** Characters a word may hold: names, numbers, IPv4/IPv6 addresses, `/len` and `lo-hi`. */
const WORD_CHAR = /[A-Za-z0-9_.:/\\-]/;

/** Tokens of `expression`; throws FilterSyntaxError at the first character outside the subset. */
export function tokenize(expression: string): FilterToken[] {
  const tokens: FilterToken[] = [];
  let at = 0;
  while (at < expression.length) {
    const c = expression[at];
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      at++;
      continue;
    }
    if (c === '(' || c === ')') {
      tokens.push({ type: c, text: c, position: at });
      at++;
      continue;
    }
    const two = expression.slice(at, at + 2);
    if (two === '&&' || two === '||') {
      tokens.push({ type: two, text: two, position: at });
      at += 2;
      continue;
    }
    if (c === '!' && expression[at + 1] !== '=') {
      tokens.push({ type: '!', text: c, position: at });
      at++;
      continue;
    }
    if (WORD_CHAR.test(c)) {
      const start = at;
      while (at < expression.length && WORD_CHAR.test(expression[at])) at++;
      tokens.push({ type: 'word', text: expression.slice(start, at), position: start });
      continue;
    }
    throw new FilterSyntaxError(
      expression,
      at,
      `unexpected character ${JSON.stringify(c)}: byte offsets, comparisons and arithmetic (` +
        "e.g. tcp[13] & 2 != 0) are not supported; use primitives such as 'tcp port 443', " +
        "'net 10.0.0.0/8', 'vlan 100', combined with and, or, not and parentheses",
    );
  }
  return tokens;
}
