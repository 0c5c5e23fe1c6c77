/**
 * `npm run bench`: runs every bench/*.bench.ts in turn (each prints its own lines). Benchmarks
 * that need root, a kernel with eBPF or Debian tools say so and skip themselves when absent.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';

const only = process.argv.slice(2);
const dir = new URL('.', import.meta.url).pathname;
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort();
// Benchmarks that run the CLI as a process use the built one.
spawnSync('npm', ['run', 'build'], { stdio: 'inherit' });
let failed = 0;
for (const file of files) {
  console.log(`\n## ${file}`);
  const run = spawnSync(process.execPath, ['--import', 'tsx', `${dir}${file}`], { stdio: 'inherit' });
  if (run.status !== 0) failed++;
}
process.exitCode = failed === 0 ? 0 : 1;
