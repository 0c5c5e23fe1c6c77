/**
 * `--since`/`--until` values of the store's commands: an age back from now (`1h`, `7d`, `1d12h`),
 * `now`, `today` or `yesterday` (UTC midnights), or a timestamp (`2026-12-01`,
 * `2026-12-01T10:00`, RFC 3339 with an offset). Times without an offset are UTC, like every time
 * flowtap prints.
 */
import { parseAgeMs } from './duration.ts';

const DAY_MS = 86_400_000;

/** The Unix milliseconds `text` names, relative to `nowMs`; undefined when it names no time. */
export function parseTimePoint(text: string, nowMs: number): number | undefined {
  const s = text.trim().toLowerCase();
  if (s === 'now') return nowMs;
  if (s === 'today') return Math.floor(nowMs / DAY_MS) * DAY_MS;
  if (s === 'yesterday') return Math.floor(nowMs / DAY_MS) * DAY_MS - DAY_MS;
  const age = parseAgeMs(s);
  if (age !== undefined) return nowMs - age;
  const m = /^(\d{4}-\d{2}-\d{2})(?:[t ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?))?(z|[+-]\d{2}:?\d{2})?$/.exec(s);
  if (!m) return undefined;
  const ms = Date.parse(`${m[1]}T${m[2] ?? '00:00'}${(m[3] ?? 'z').toUpperCase()}`);
  return Number.isNaN(ms) ? undefined : ms;
}

/** What `--since`/`--until` accept, for error messages and help. */
export const TIME_POINT_ACCEPTED =
  'an age such as 1h or 7d, now, today, yesterday, or a UTC time such as 2026-12-01T10:00';
