/**
 * SIGINT/SIGTERM handling of long-running commands: the first stops cleanly, a second exits at once
 * unless it comes within a short grace after the first. Ctrl-C under `npm start` or a process
 * manager delivers the same SIGINT twice (to npm and to flowtap, and npm forwards it): that pair
 * must not cut the final flush short.
 */
import type { Logger } from './logger.ts';

/** The signals that stop the agent. */
export const STOP_SIGNALS = ['SIGINT', 'SIGTERM'] as const;
/** Exit codes of a second signal, the shell's 128 + signal number. */
const FORCED_EXIT_CODE = { SIGINT: 130, SIGTERM: 143 } as const;
/** A second signal this soon after the first is the same request delivered twice, not an urge to quit. */
export const SECOND_SIGNAL_GRACE_MS = 1_000;

/**
 * Calls `stop` on the first SIGINT/SIGTERM and `exit(130|143)` on a later one (someone wants out
 * now, whatever is still being flushed); one within SECOND_SIGNAL_GRACE_MS of the first is logged
 * and ignored. Returns the function that removes the handlers.
 */
export function handleStopSignals(
  stop: () => Promise<void>,
  logger: Logger,
  exit: (code: number) => void = (code) => process.exit(code),
  nowMs: () => number = () => performance.now(),
): () => void {
  let firstAtMs: number | undefined;
  const onSignal = (signal: (typeof STOP_SIGNALS)[number]) => {
    if (firstAtMs !== undefined) {
      if (nowMs() - firstAtMs < SECOND_SIGNAL_GRACE_MS) {
        logger.info({ signal }, 'signal repeated at once: still flushing (send it again to exit now)');
        return;
      }
      logger.warn({ signal }, 'second signal: exiting without waiting');
      exit(FORCED_EXIT_CODE[signal]);
      return;
    }
    firstAtMs = nowMs();
    logger.info({ signal }, 'stopping: draining the kernel maps and flushing the exporters');
    void stop();
  };
  for (const signal of STOP_SIGNALS) process.on(signal, onSignal);
  return () => {
    for (const signal of STOP_SIGNALS) process.off(signal, onSignal);
  };
}

/**
 * Calls `reload` on every SIGHUP (re-read the config file) instead of the default of ending the
 * process. Returns the function that removes the handler.
 */
export function handleReloadSignal(reload: () => void): () => void {
  const onSignal = () => reload();
  process.on('SIGHUP', onSignal);
  return () => {
    process.off('SIGHUP', onSignal);
  };
}
