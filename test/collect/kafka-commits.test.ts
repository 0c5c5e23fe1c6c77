import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deferred } from '../../src/collect/deferred.ts';
import { type PartitionOffset, StoredOffsetCommits } from '../../src/collect/kafka-commits.ts';

/** A coordinator that records each commit request and answers when told. */
class FakeCoordinator {
  readonly requests: PartitionOffset[][] = [];
  readonly #answers: ReturnType<typeof deferred>[] = [];
  commit = (offsets: PartitionOffset[]): Promise<void> => {
    this.requests.push(offsets);
    const answer = deferred();
    this.#answers.push(answer);
    return answer.promise;
  };
  answer(index: number, error?: Error): void {
    if (error) this.#answers[index].reject(error);
    else this.#answers[index].resolve();
  }
}

const flush = () => new Promise((resolve) => setImmediate(resolve));
const offsets = (request: PartitionOffset[] | undefined) =>
  request?.map(({ partition, offset }) => `${partition}:${offset}`).sort();

test('a partition offset is committed only once its batch and every earlier batch of the partition are stored', async () => {
  const coordinator = new FakeCoordinator();
  const commits = new StoredOffsetCommits('flows', coordinator.commit, () => assert.fail('no failure'));
  const first = deferred();
  const second = deferred();
  commits.add(0, '10', first.promise);
  commits.add(0, '20', second.promise);
  second.resolve();
  await flush();
  assert.equal(coordinator.requests.length, 0, 'the second batch is stored but the first is not');
  first.resolve();
  await flush();
  assert.deepEqual(offsets(coordinator.requests[0]), ['0:10']);
  coordinator.answer(0);
  await flush();
  assert.deepEqual(offsets(coordinator.requests[1]), ['0:20']);
  coordinator.answer(1);
  await commits.settled();
  assert.equal(coordinator.requests.length, 2);
});

test('offsets stored while a commit is in flight go in one request, the newest per partition', async () => {
  const coordinator = new FakeCoordinator();
  const commits = new StoredOffsetCommits('flows', coordinator.commit, () => assert.fail('no failure'));
  commits.add(0, '5', Promise.resolve());
  await flush();
  assert.equal(coordinator.requests.length, 1);
  commits.add(0, '9', Promise.resolve());
  commits.add(1, '3', Promise.resolve());
  commits.add(0, '12', Promise.resolve());
  commits.add(2, '7', Promise.resolve());
  await flush();
  assert.equal(coordinator.requests.length, 1, 'one request in flight at a time');
  coordinator.answer(0);
  await flush();
  assert.equal(coordinator.requests.length, 2);
  assert.deepEqual(offsets(coordinator.requests[1]), ['0:12', '1:3', '2:7']);
  assert.ok(coordinator.requests[1].every((o) => o.topic === 'flows'));
  coordinator.answer(1);
  await commits.settled();
});

test('after a batch that was not stored, its partition commits nothing more while the others go on', async () => {
  const coordinator = new FakeCoordinator();
  let failures = 0;
  const commits = new StoredOffsetCommits('flows', coordinator.commit, () => {
    failures++;
  });
  const lost = deferred();
  commits.add(0, '10', lost.promise);
  commits.add(0, '20', Promise.resolve());
  lost.reject(new Error('gave up at close'));
  await flush();
  commits.add(1, '4', Promise.resolve());
  await flush();
  assert.equal(failures, 1);
  assert.deepEqual(offsets(coordinator.requests[0]), ['1:4']);
  coordinator.answer(0);
  await commits.settled();
  assert.equal(coordinator.requests.length, 1);
});

test('a failed commit request is counted and later offsets are still committed', async () => {
  const coordinator = new FakeCoordinator();
  let failures = 0;
  const commits = new StoredOffsetCommits('flows', coordinator.commit, () => {
    failures++;
  });
  commits.add(3, '100', Promise.resolve());
  await flush();
  commits.add(3, '200', Promise.resolve());
  coordinator.answer(0, new Error('REBALANCE_IN_PROGRESS'));
  await flush();
  assert.equal(failures, 1);
  assert.deepEqual(offsets(coordinator.requests[1]), ['3:200']);
  coordinator.answer(1);
  await commits.settled();
  assert.equal(failures, 1);
});

test('settled waits for batches still being stored and for the commit they lead to', async () => {
  const coordinator = new FakeCoordinator();
  const commits = new StoredOffsetCommits('flows', coordinator.commit, () => assert.fail('no failure'));
  const stored = deferred();
  commits.add(0, '1', stored.promise);
  let settled = false;
  const done = commits.settled().then(() => {
    settled = true;
  });
  await flush();
  assert.equal(settled, false);
  stored.resolve();
  await flush();
  assert.equal(settled, false, 'the commit is still in flight');
  coordinator.answer(0);
  await done;
  assert.deepEqual(offsets(coordinator.requests[0]), ['0:1']);
});
