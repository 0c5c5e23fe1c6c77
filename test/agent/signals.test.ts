import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger } from '../../src/agent/logger.ts';
import { handleStopSignals, SECOND_SIGNAL_GRACE_MS } from '../../src/agent/signals.ts';

test('the first SIGTERM stops the agent and a second one after the grace exits at once with 143', (t) => {
  let stops = 0;
  let nowMs = 0;
  const exits: number[] = [];
  const never = new Promise<void>(() => {});
  const remove = handleStopSignals(
    () => {
      stops++;
      return never; // a stop still flushing when the second signal comes
    },
    createLogger('silent'),
    (code) => exits.push(code),
    () => nowMs,
  );
  t.after(remove);
  process.emit('SIGTERM', 'SIGTERM');
  assert.deepEqual([stops, exits], [1, []]);
  nowMs = SECOND_SIGNAL_GRACE_MS;
  process.emit('SIGTERM', 'SIGTERM');
  assert.deepEqual([stops, exits], [1, [143]]);
});

test('a second SIGINT after the grace exits with 130', (t) => {
  let nowMs = 0;
  const exits: number[] = [];
  const remove = handleStopSignals(
    () => new Promise<void>(() => {}),
    createLogger('silent'),
    (code) => exits.push(code),
    () => nowMs,
  );
  t.after(remove);
  process.emit('SIGINT', 'SIGINT');
  nowMs = SECOND_SIGNAL_GRACE_MS + 1;
  process.emit('SIGINT', 'SIGINT');
  assert.deepEqual(exits, [130]);
});

test('a second signal within the grace after the first does not abort the flush', (t) => {
  let stops = 0;
  let nowMs = 0;
  const exits: number[] = [];
  const remove = handleStopSignals(
    () => {
      stops++;
      return new Promise<void>(() => {});
    },
    createLogger('silent'),
    (code) => exits.push(code),
    () => nowMs,
  );
  t.after(remove);
  process.emit('SIGINT', 'SIGINT');
  nowMs = SECOND_SIGNAL_GRACE_MS - 1;
  process.emit('SIGINT', 'SIGINT');
  assert.deepEqual([stops, exits], [1, []]);
});

test('removing the handlers leaves the signals to others', () => {
  const before = process.listenerCount('SIGTERM');
  const remove = handleStopSignals(
    async () => {},
    createLogger('silent'),
    () => {},
  );
  assert.equal(process.listenerCount('SIGTERM'), before + 1);
  remove();
  assert.equal(process.listenerCount('SIGTERM'), before);
});
