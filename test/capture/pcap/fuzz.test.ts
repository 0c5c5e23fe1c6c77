import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seededRandom } from '../../helpers/flows.ts';
import { fuzzOne, fuzzRun, fuzzSeeds } from './fuzz-corpus.ts';

test('every fuzz seed reads without error and counts all of its packets', () => {
  const random = seededRandom(1);
  for (const seed of fuzzSeeds()) assert.equal(fuzzOne(seed, random), 'ok');
});

test('20 000 mutated captures each end in flows or a typed FlowtapError, never another exception', () => {
  const outcomes = fuzzRun(20_000, 0x5eed);
  // Both ways out must be exercised, or the mutator is not reaching the reader.
  assert.ok((outcomes.get('ok') ?? 0) > 1000, JSON.stringify([...outcomes]));
  assert.ok((outcomes.get('FLOWTAP_CAPTURE_FORMAT') ?? 0) > 1000, JSON.stringify([...outcomes]));
  assert.deepEqual([...outcomes.keys()].sort(), ['FLOWTAP_CAPTURE_FORMAT', 'ok']);
});
