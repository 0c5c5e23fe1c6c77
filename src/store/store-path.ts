/** Where the flow store lives: STORE_PATH names a directory (or a `.duckdb` file) holding it. */
import { statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** The database file's name inside the store directory. */
export const STORE_FILE_NAME = 'flows.duckdb';
/** The store directory of an agent run as root. */
export const ROOT_STORE_DIRECTORY = '/var/lib/flowtap';

/** The default store directory: /var/lib/flowtap as root, else $XDG_STATE_HOME/flowtap (~/.local/state/flowtap). */
export function defaultStoreDirectory(
  env: Readonly<Record<string, string | undefined>>,
  uid: number = process.getuid?.() ?? -1,
): string {
  if (uid === 0) return ROOT_STORE_DIRECTORY;
  const stateHome = env.XDG_STATE_HOME || join(env.HOME || homedir(), '.local', 'state');
  return join(stateHome, 'flowtap');
}

/** The database file of the store at `path`: `path` itself when it is a file or ends in `.duckdb`. */
export function storeFile(path: string): string {
  if (path.endsWith('.duckdb')) return path;
  try {
    if (statSync(path).isFile()) return path;
  } catch {
    // Missing: a directory the writer creates.
  }
  return join(path, STORE_FILE_NAME);
}
