/** SIGINT/SIGTERM handling of long-running commands: the first stops cleanly, a second exits at once. */
import type { Logger } from './logger.ts';

/** The signals that stop the agent. */
export const STOP_SIGNALS = ['SIGINT', 'SIGTERM'] as const;
/** Exit codes of a second signal, the shell's 128 + signal number. */
const FORCED_EXIT_CODE = { SIGINT: 130, SIGTERM: 143 } as const;

/**
 * Calls `stop` on the first SIGINT/SIGTERM and `exit(130|143)` on a second one (someone wants out
 * now, whatever is still being flushed). Returns the function that removes the handlers.
 */
export function handleStopSignals(
  stop: () => Promise<void>,
  logger: Logger,
  exit: (code: number) => void = (code) => process.exit(code),
): () => void {
  let received = false;
  const onSignal = (signal: (typeof STOP_SIGNALS)[number]) => {
    if (received) {
      logger.warn({ signal }, 'second signal: exiting without waiting');
      exit(FORCED_EXIT_CODE[signal]);
      return;
    }
    received = true;
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
