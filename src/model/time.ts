/** Timestamps: flowtap keeps nanoseconds since the Unix epoch as bigint outside hot paths. */

const NS_PER_MS = 1_000_000n;
const NS_PER_S = 1_000_000_000n;

/**
 * RFC 3339 text in UTC with nanoseconds, trailing zeros of the fraction dropped, exactly as Go's
 * `time.RFC3339Nano` prints it (the reference's JSON form): `2022-03-17T07:42:12.414480074Z`.
 */
export function formatRfc3339Nano(unixNs: bigint): string {
  let seconds = unixNs / NS_PER_S;
  let fraction = Number(unixNs % NS_PER_S);
  if (fraction < 0) {
    fraction += 1e9;
    seconds -= 1n;
  }
  const base = rfc3339Seconds(Number(seconds));
  if (fraction === 0) return `${base}Z`;
  let digits = 9;
  while (fraction % 10 === 0) {
    fraction /= 10;
    digits--;
  }
  return `${base}.${String(fraction).padStart(digits, '0')}Z`;
}

/**
 * `YYYY-MM-DDTHH:MM:SS` (UTC) of the Unix second `wholeSeconds`: the part of
 * {@link formatRfc3339Nano}'s text before the fraction.
 */
export function rfc3339Seconds(wholeSeconds: number): string {
  // A flow's start and end, and the flows evicted together, fall in a few distinct seconds: the
  // date part of each is formatted once, in a small cache indexed by the second's low bits (one
  // entry would be replaced at every call when start and end lie in different seconds).
  const slot = wholeSeconds & (DATE_CACHE_SLOTS - 1);
  if (cachedSeconds[slot] !== wholeSeconds) {
    cachedSeconds[slot] = wholeSeconds;
    cachedDates[slot] = new Date(wholeSeconds * 1000).toISOString().slice(0, 19);
  }
  return cachedDates[slot];
}

const DATE_CACHE_SLOTS = 64;
const cachedSeconds = new Float64Array(DATE_CACHE_SLOTS).fill(Number.NaN);
const cachedDates: string[] = new Array<string>(DATE_CACHE_SLOTS).fill('');

/** Parses RFC 3339 text (any fraction length, `Z` or offset) into Unix nanoseconds; undefined if invalid. */
export function parseRfc3339Nano(text: string): bigint | undefined {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(text);
  if (!m) return undefined;
  const ms = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(ms)) return undefined;
  return BigInt(ms) * NS_PER_MS + BigInt((m[2] ?? '').padEnd(9, '0'));
}

/** Current wall-clock time in Unix nanoseconds (microsecond resolution from the platform). */
export function nowUnixNs(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
}

/** Unix nanoseconds to Unix milliseconds (truncated), for exporters that carry milliseconds. */
export function unixNsToMs(unixNs: bigint): number {
  return Number(unixNs / NS_PER_MS);
}
