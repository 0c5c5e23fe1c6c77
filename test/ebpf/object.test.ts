import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { HEALTH_OBJECT_PATH } from '../../src/ebpf/health-programs.ts';
import { checkFlowObjectOptions, FLOWS_OBJECT_PATH } from '../../src/ebpf/object.ts';
import { ConfigError } from '../../src/errors.ts';

const BUILD_SCRIPT = fileURLToPath(new URL('../../scripts/build-bpf.sh', import.meta.url));
const hasClang =
  spawnSync('clang', ['--version']).status === 0 && spawnSync('llvm-strip', ['--version']).status === 0;

for (const [name, committed] of [
  ['flows', FLOWS_OBJECT_PATH],
  ['health', HEALTH_OBJECT_PATH],
] as const) {
  test(`the committed bpf/${name}.bpf.o is exactly what the build script makes from the sources`, {
    skip: !hasClang && 'clang/llvm-strip not installed',
  }, (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'flowtap-bpf-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const rebuilt = join(dir, `${name}.bpf.o`);
    execFileSync(BUILD_SCRIPT, [name, rebuilt], { stdio: 'pipe' });
    assert.ok(
      readFileSync(rebuilt).equals(readFileSync(committed)),
      `bpf/${name}.bpf.o is stale: run npm run build:bpf and commit the result`,
    );
  });
}

test('sampling of zero is rejected before anything is loaded', () => {
  assert.throws(
    () => checkFlowObjectOptions({ sampling: 0, maxFlows: 10, ringBufferBytes: 4096, mapKind: 'percpu' }),
    (err) => err instanceof ConfigError && err.setting === 'sampling',
  );
});

test('a ring buffer size that is not a power of two is rejected before anything is loaded', () => {
  assert.throws(
    () => checkFlowObjectOptions({ sampling: 1, maxFlows: 10, ringBufferBytes: 5000, mapKind: 'percpu' }),
    (err) => err instanceof ConfigError && err.setting === 'ringBufferBytes',
  );
});
