/**
 * The one entry from settings to a compiled filter: the expression (positional argument,
 * --filter, FILTER) and FLOW_FILTER_RULES, both optional, compiled into one program. A packet
 * must pass the expression and then the rules.
 */
import { compileFilter } from './compile.ts';
import { parseFilterExpression } from './parser.ts';
import type { FilterProgram } from './program.ts';
import { parseFilterRules } from './rules.ts';

/** What a filter is built from. */
export interface FilterSettings {
  /** pcap-filter expression; undefined or blank = none. */
  readonly expression?: string | undefined;
  /** FLOW_FILTER_RULES as text or an already parsed list; undefined = none. */
  readonly rules?: unknown;
}

/** The compiled filter, or undefined when neither an expression nor rules are given. */
export function buildFilter(settings: FilterSettings): FilterProgram | undefined {
  const text = settings.expression?.trim();
  const parsedRules = settings.rules === undefined ? undefined : parseFilterRules(settings.rules);
  const hasRules = parsedRules !== undefined && parsedRules.rules.length > 0;
  if (!text && !hasRules) return undefined;
  return compileFilter({
    expression: text ? { text, formula: parseFilterExpression(text) } : undefined,
    rules: parsedRules?.rules,
    unmatchedAccept: parsedRules?.unmatchedAccept,
  });
}

/** The filter as people read it in logs and the web view. */
export function describeFilter(program: FilterProgram | undefined): string {
  if (!program) return 'none';
  const parts: string[] = [];
  if (program.source.expression) parts.push(program.source.expression);
  if (program.source.rules > 0)
    parts.push(`${program.source.rules} FLOW_FILTER_RULES rule${program.source.rules === 1 ? '' : 's'}`);
  return parts.join(' + ');
}
