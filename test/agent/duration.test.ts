import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatDurationMs, parseDurationMs } from '../../src/agent/duration.ts';
import { runCli } from '../helpers/cli.ts';

test('durations are printed as Go durations that parse back to the same milliseconds', () => {
  for (const [ms, text] of [
    [5_000, '5s'],
    [30_000, '30s'],
    [90_000, '1m30s'],
    [250, '250ms'],
    [3_600_000, '1h'],
    [0, '0s'],
  ] as const) {
    assert.equal(formatDurationMs(ms), text);
    assert.equal(parseDurationMs(text), ms);
  }
});

test('--help of read and decode shows default durations as durations', async () => {
  for (const command of ['read', 'decode']) {
    const { code, stdout } = await runCli([command, '--help']);
    assert.equal(code, 0);
    assert.match(stdout, /\(default: 5s\)/, command);
    assert.doesNotMatch(stdout, /\(default: 5000\)/, command);
  }
});
