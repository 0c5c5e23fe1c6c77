/**
 * Preloaded into a CLI child process (`--import`): once the CLI installs its unhandledRejection
 * handler, rejects two promises nobody handles, the way a library's stray rejection would.
 */
const on = process.on.bind(process);
process.on = ((event: string, listener: (...args: unknown[]) => void) => {
  on(event, listener);
  if (event === 'unhandledRejection') {
    setImmediate(() => {
      for (let i = 0; i < 2; i++) {
        const err: NodeJS.ErrnoException = new Error('the socket went away');
        err.code = 'ECONNRESET';
        void Promise.reject(err);
      }
    });
  }
  return process;
}) as typeof process.on;
