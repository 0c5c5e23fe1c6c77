/**
 * Debian's chromium for the web view tests, started as the project's machines need it: headless,
 * without sandbox (root) and without background networking (the machine has no network to reach).
 */
import { type Browser, chromium } from 'playwright-core';

/** Launches headless chromium; `env` adds to the browser's environment (e.g. `TZ`). */
export function launchChromium(env: NodeJS.ProcessEnv = {}): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    env: { ...process.env, ...env },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
