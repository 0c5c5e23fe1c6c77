/**
 * Files shipped with flowtap (the compiled eBPF object, the web page, package.json) are found
 * from the package root, which is one level up from src/ when run from source (tsx) and two
 * levels up from dist/src/ when run built.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findPackageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let level = 0; level < 4; level++) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'flowtap') return dir;
      } catch {
        // an unreadable manifest is not ours; keep looking upward
      }
    }
    dir = dirname(dir);
  }
  throw new Error('flowtap cannot find its package root (package.json named flowtap above src/)');
}

/** Absolute directory of the flowtap package. */
export const PACKAGE_ROOT = findPackageRoot();

/** Absolute path of a file shipped in the package, e.g. `packagePath('bpf', 'flows.bpf.o')`. */
export function packagePath(...segments: string[]): string {
  return join(PACKAGE_ROOT, ...segments);
}
