/** Bad settings end `flowtap run` with exit code 2 and a message naming the setting, before any capture. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCli } from '../helpers/cli.ts';

test('a wrong flag value exits 2 naming the flag, the value and what is accepted', async () => {
  const r = await runCli(['run', '--cache-max-flows', 'abc']);
  assert.equal(r.code, 2);
  assert.equal(
    r.stderr,
    'flowtap: invalid --cache-max-flows="abc": expected an integer from 1 to 16777216\n',
  );
  assert.equal(r.stdout, '');
});

test('a wrong environment variable exits 2 naming the variable', async () => {
  const r = await runCli(['run'], { env: { DIRECTION: 'sideways' } });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^flowtap: invalid DIRECTION="sideways": expected ingress, egress, both\n$/);
});

test('run is the default command, so a bare flowtap validates its settings too', async () => {
  const r = await runCli([], { env: { LISTEN_POLL_PERIOD: 'often' } });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /invalid LISTEN_POLL_PERIOD="often": expected a Go duration/);
});

test('an unknown flag exits 2 with the usage error', async () => {
  const r = await runCli(['run', '--no-such-flag']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown option '--no-such-flag'/);
});
