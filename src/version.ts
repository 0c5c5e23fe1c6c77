/** flowtap's version, read once from package.json so `--version` and exporters agree. */
import { readFileSync } from 'node:fs';

function readVersion(): string {
  // src/version.ts runs from src/ (tsx) or dist/src/ (built): look upward for package.json.
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'flowtap' && pkg.version) return pkg.version;
    } catch {
      // not at this level; try the next one up
    }
  }
  return '0.0.0';
}

/** Version of this flowtap build. */
export const VERSION = readVersion();
