/** Go-style durations (`300ms`, `5s`, `1m30s`), the form the reference's settings use. */

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Milliseconds in `text`, a sum of number+unit terms with the units of `unitMs`; undefined when it is not one. */
function parseTermsMs(
  text: string,
  unitMs: Readonly<Record<string, number>>,
  re: RegExp,
): number | undefined {
  const s = text.trim();
  if (s === '0') return 0;
  let total = 0;
  let at = 0;
  while (at < s.length) {
    re.lastIndex = at;
    const m = re.exec(s);
    if (!m) return undefined;
    total += Number(m[1]) * unitMs[m[2]];
    at = re.lastIndex;
  }
  return at === 0 ? undefined : total;
}

const DURATION_TERM = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;

/** Milliseconds in a Go duration string; undefined when it is not one. A bare `0` is zero. */
export function parseDurationMs(text: string): number | undefined {
  return parseTermsMs(text, UNIT_MS, DURATION_TERM);
}

const AGE_UNIT_MS: Record<string, number> = { ...UNIT_MS, d: 86_400_000, w: 604_800_000 };
const AGE_TERM = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d|w)/y;

/**
 * Milliseconds in an age such as `7d`, `1d12h`, `90m` or `2w`: a Go duration that may also use
 * days (`d`) and weeks (`w`), for retention and query windows. Undefined when it is not one.
 */
export function parseAgeMs(text: string): number | undefined {
  return parseTermsMs(text, AGE_UNIT_MS, AGE_TERM);
}

const FORMAT_UNITS: readonly [string, number][] = [
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
  ['ms', 1],
];

/**
 * `ms` as a Go duration people read (`5s`, `1m30s`, `250ms`), the inverse of parseDurationMs for
 * whole milliseconds: how --help shows default durations.
 */
export function formatDurationMs(ms: number): string {
  if (ms === 0) return '0s';
  let rest = Math.round(ms);
  let text = '';
  for (const [unit, unitMs] of FORMAT_UNITS) {
    const n = Math.floor(rest / unitMs);
    if (n > 0) text += `${n}${unit}`;
    rest -= n * unitMs;
  }
  return text;
}
