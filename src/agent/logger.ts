/** Structured logs: pino JSON lines on stderr, so stdout carries nothing but flows. */
import { type Logger, pino } from 'pino';
import type { LogLevel } from './config.ts';

/** The agent's logger type. */
export type { Logger };

/**
 * A logger writing synchronously to stderr: the lines written just before an exit (the last
 * error, the shutdown summary) are never lost in a buffer.
 */
export function createLogger(level: LogLevel): Logger {
  return pino({ level, base: { name: 'flowtap' } }, pino.destination({ fd: 2, sync: true }));
}
