/**
 * Log lines for people (`LOG_FORMAT=text`, the default on a terminal): pino's JSON object of one
 * line as `10:42:07.123 WARN  message key=value ...`, times in UTC like every time flowtap prints.
 * Pipes and files get the JSON lines themselves (`LOG_FORMAT=json`, the default off a terminal).
 */

/** How log lines are written. */
export type LogFormat = 'json' | 'text';

const LEVEL_NAMES: Readonly<Record<number, string>> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};
/** pino's own fields, shown in the line's head (or not at all) instead of as key=value. */
const HEAD_FIELDS = new Set(['level', 'time', 'msg', 'name', 'pid', 'hostname']);

function valueText(value: unknown): string {
  if (typeof value === 'string') return /[\s"=]/.test(value) || value === '' ? JSON.stringify(value) : value;
  if (value !== null && typeof value === 'object') {
    const err = value as { message?: unknown; stack?: unknown; type?: unknown };
    // A serialized error: its message in line, its stack on the lines below.
    if (typeof err.message === 'string' && typeof err.stack === 'string') return JSON.stringify(err.message);
    return JSON.stringify(value);
  }
  return String(value);
}

/** One JSON log line of pino (without its newline) as text for people, with its newline. */
export function humanLogLine(json: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return `${json}\n`;
  }
  const time = typeof entry.time === 'number' ? new Date(entry.time).toISOString().slice(11, 23) : '';
  const level = (LEVEL_NAMES[entry.level as number] ?? String(entry.level)).padEnd(5);
  let line = `${time} ${level} ${String(entry.msg ?? '')}`;
  let stack = '';
  for (const [key, value] of Object.entries(entry)) {
    if (HEAD_FIELDS.has(key) || value === undefined) continue;
    line += ` ${key}=${valueText(value)}`;
    const s = (value as { stack?: unknown } | null)?.stack;
    if (typeof s === 'string') stack += `\n${s}`;
  }
  return `${line}${stack}\n`;
}
