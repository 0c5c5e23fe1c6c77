import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { runCli } from '../helpers/cli.ts';

/** What bash completes for the command line `words` (the last one being completed). */
function bashCompletes(script: string, words: string[]): string[] {
  const program = `${script}
COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}
_flowtap; printf '%s\\n' "\${COMPREPLY[@]}"`;
  return execFileSync('bash', ['-c', program], { encoding: 'utf8' }).split('\n').filter(Boolean);
}

test('the bash completion completes commands and each command’s own flags', async () => {
  const { code, stdout } = await runCli(['completion', 'bash']);
  assert.equal(code, 0);
  assert.deepEqual(bashCompletes(stdout, ['flowtap', 're']), ['read']);
  assert.deepEqual(bashCompletes(stdout, ['flowtap', 'run', '--dur']), ['--duration']);
  assert.deepEqual(bashCompletes(stdout, ['flowtap', 'read', '--export-f']), ['--export-flush-timeout']);
  assert.deepEqual(bashCompletes(stdout, ['flowtap', 'decode', '--dur']), [], 'decode has no --duration');
});

test('the zsh completion names every command and registers itself', async () => {
  const { code, stdout } = await runCli(['completion', 'zsh']);
  assert.equal(code, 0);
  assert.match(stdout, /^#compdef flowtap/);
  assert.match(stdout, /compadd -- run decode read collect query export-parquet completion/);
  assert.match(stdout, /compdef _flowtap flowtap\n$/);
});

test('an unknown shell is a settings error naming the shells', async () => {
  const { code, stderr } = await runCli(['completion', 'fish']);
  assert.equal(code, 2);
  assert.match(stderr, /expected bash or zsh/);
});
