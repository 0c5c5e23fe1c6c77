import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseTimePoint } from '../../src/agent/time-point.ts';

const NOW = Date.parse('2026-12-02T06:30:00Z');

test('an age counts back from now, with days and weeks', () => {
  assert.equal(parseTimePoint('1h', NOW), NOW - 3_600_000);
  assert.equal(parseTimePoint('7d', NOW), NOW - 7 * 86_400_000);
  assert.equal(parseTimePoint('1d12h', NOW), NOW - 36 * 3_600_000);
  assert.equal(parseTimePoint('2w', NOW), NOW - 14 * 86_400_000);
});

test('now, today and yesterday are UTC instants', () => {
  assert.equal(parseTimePoint('now', NOW), NOW);
  assert.equal(parseTimePoint('today', NOW), Date.parse('2026-12-02T00:00:00Z'));
  assert.equal(parseTimePoint('Yesterday', NOW), Date.parse('2026-12-01T00:00:00Z'));
});

test('timestamps without an offset are UTC; offsets are honoured', () => {
  assert.equal(parseTimePoint('2026-12-01', NOW), Date.parse('2026-12-01T00:00:00Z'));
  assert.equal(parseTimePoint('2026-12-01T10:00', NOW), Date.parse('2026-12-01T10:00:00Z'));
  assert.equal(parseTimePoint('2026-12-01 10:00:30.5', NOW), Date.parse('2026-12-01T10:00:30.500Z'));
  assert.equal(parseTimePoint('2026-12-01T10:00:00+02:00', NOW), Date.parse('2026-12-01T08:00:00Z'));
});

test('text that names no time is refused', () => {
  for (const text of ['last tuesday', '2026-13-45', '', '5 minutes'])
    assert.equal(parseTimePoint(text, NOW), undefined);
});
