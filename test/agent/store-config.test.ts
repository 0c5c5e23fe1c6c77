import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_STORE_RETENTION_MS, loadConfig } from '../../src/agent/config.ts';
import { ConfigError } from '../../src/errors.ts';
import { defaultStoreDirectory } from '../../src/store/store-path.ts';

const load = (env: Record<string, string>, flags = {}) => loadConfig({ flags, env, stdoutIsTty: false });

test('the store defaults to flows.duckdb under XDG_STATE_HOME, 7 days of retention and no byte budget', () => {
  const c = load({ XDG_STATE_HOME: '/state' });
  if (process.getuid?.() === 0) assert.equal(c.store.file, '/var/lib/flowtap/flows.duckdb');
  else assert.equal(c.store.file, '/state/flowtap/flows.duckdb');
  assert.equal(c.store.retentionMs, DEFAULT_STORE_RETENTION_MS);
  assert.equal(c.store.maxBytes, 0);
});

test('root keeps the store in /var/lib/flowtap, others under XDG_STATE_HOME or ~/.local/state', () => {
  assert.equal(defaultStoreDirectory({ XDG_STATE_HOME: '/s' }, 0), '/var/lib/flowtap');
  assert.equal(defaultStoreDirectory({ XDG_STATE_HOME: '/s' }, 1000), '/s/flowtap');
  assert.equal(defaultStoreDirectory({ HOME: '/home/u' }, 1000), '/home/u/.local/state/flowtap');
});

test('STORE_PATH, STORE_RETENTION and STORE_MAX_BYTES are read with units', () => {
  const c = load({ STORE_PATH: '/data/ft', STORE_RETENTION: '1d12h', STORE_MAX_BYTES: '2GiB' });
  assert.deepEqual(c.store, {
    file: '/data/ft/flows.duckdb',
    retentionMs: 36 * 3_600_000,
    maxBytes: 2 * 2 ** 30,
  });
  assert.equal(load({ STORE_PATH: '/x/copy.duckdb', STORE_MAX_BYTES: '10GB' }).store.file, '/x/copy.duckdb');
  assert.equal(load({ STORE_MAX_BYTES: '10GB' }).store.maxBytes, 10e9);
  assert.equal(load({ STORE_RETENTION: '2w' }).store.retentionMs, 14 * 86_400_000);
  assert.equal(load({}, { storePath: '/flag' }).store.file, '/flag/flows.duckdb');
});

test('a wrong STORE_RETENTION or STORE_MAX_BYTES is a ConfigError saying what is accepted', () => {
  assert.throws(
    () => load({ STORE_RETENTION: 'a week' }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /STORE_RETENTION="a week": expected an age such as 7d/);
      return true;
    },
  );
  assert.throws(() => load({ STORE_MAX_BYTES: '10 parsecs' }), /STORE_MAX_BYTES.*a byte size such as 512MiB/);
});

test('the store is one of the EXPORT kinds', () => {
  assert.deepEqual(load({ EXPORT: 'json,store' }).export, ['json', 'store']);
});
