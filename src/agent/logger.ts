/**
 * Structured logs on stderr, so stdout carries nothing but flows: pino JSON lines, or the same
 * lines for people (src/agent/log-lines.ts) on a terminal; the live terminal view passes a
 * destination of its own (its log pane).
 */
import type { Writable } from 'node:stream';
import { type DestinationStream, type Logger, pino } from 'pino';
import type { LogLevel } from './config.ts';
import { humanLogLine, type LogFormat } from './log-lines.ts';

/** The agent's logger type. */
export type { Logger };

/** Writes each JSON line pino hands over as text for people, to `out`. */
function textDestination(out: Writable | NodeJS.WriteStream): DestinationStream {
  return {
    write(chunk: string): void {
      let text = '';
      for (const line of chunk.split('\n')) if (line !== '') text += humanLogLine(line);
      out.write(text);
    },
  };
}

/**
 * A logger writing synchronously to stderr (or to `destination`): the lines written just before
 * an exit (the last error, the shutdown summary) are never lost in a buffer.
 */
export function createLogger(level: LogLevel, format: LogFormat = 'json', destination?: Writable): Logger {
  const options = { level, base: { name: 'flowtap' } };
  if (format === 'text') return pino(options, textDestination(destination ?? process.stderr));
  return pino(options, destination ?? pino.destination({ fd: 2, sync: true }));
}
