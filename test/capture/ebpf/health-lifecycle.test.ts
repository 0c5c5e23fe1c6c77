import assert from 'node:assert/strict';
import { test } from 'node:test';
import { enabledFeatures, HEALTH_HOOKS } from '../../../src/ebpf/health-hooks.ts';
import { HealthPrograms } from '../../../src/ebpf/health-programs.ts';
import { FLOWS_OBJECT_PATH } from '../../../src/ebpf/object.ts';
import { HEALTH_SECTION, SectionMaps } from '../../../src/ebpf/section-maps.ts';
import { InputError } from '../../../src/errors.ts';
import { skipUnlessKernel } from '../../helpers/privileges.ts';
import { createVethPair, run } from '../../net/netns.ts';
import {
  assertNothingLeft,
  bpfFdCount,
  openCollecting,
  sendTraffic,
  startFixture,
  waitForExit,
} from './helpers.ts';

const skip = skipUnlessKernel('load TCP health programs and attach TC programs to veths');

const ALL_ON = { rtt: true, retrans: true, drops: true, hooks: 'auto' } as const;
const HEALTH_PROGRAMS = new Set(Object.values(HEALTH_HOOKS).flatMap((hooks) => hooks.map((h) => h.program)));
/** The kernel keeps 15 characters of a program's name (bpftool shows the whole one from BTF). */
const KERNEL_NAME_BYTES = 15;

/** flowtap health programs loaded in the kernel now, by any process. */
async function healthProgramsLoaded(): Promise<number> {
  const programs = JSON.parse(await run('bpftool', ['-j', 'prog', 'show'])) as Array<{ name?: string }>;
  const names = new Set([...HEALTH_PROGRAMS].flatMap((n) => [n, n.slice(0, KERNEL_NAME_BYTES)]));
  return programs.filter((p) => p.name !== undefined && names.has(p.name)).length;
}

test('with every health feature on, stopping the capture detaches the health programs and leaves nothing behind', {
  skip,
}, async (t) => {
  const pair = await createVethPair('fthl1');
  t.after(() => pair.cleanup());
  const fdsBefore = bpfFdCount();
  const { capture, done } = await openCollecting(t, { health: ALL_ON });
  assert.deepEqual(
    capture.healthHooks.map((c) => c.feature),
    enabledFeatures(ALL_ON),
  );
  assert.ok(
    capture.healthHooks.every((c) => c.hook !== undefined),
    'every feature is hooked here',
  );
  await capture.attach(pair.hostIf);
  await sendTraffic(pair, { kind: 'tcp', host: pair.hostAddr4, port: 9, bytes: 10 }).catch(() => undefined);
  await capture.stop();
  await done;
  await assertNothingLeft(pair.hostIf, fdsBefore);
});

test('a hook the kernel refuses is recorded with its reason and the next one of the feature is used', {
  skip,
}, async (t) => {
  const { capture } = await openCollecting(t, { health: { ...ALL_ON, retrans: false, drops: false } });
  const [rtt] = capture.healthHooks;
  assert.ok(rtt.hook, 'RTT is hooked');
  const tried = HEALTH_HOOKS.rtt.indexOf(rtt.hook);
  assert.equal(rtt.refused.length, tried, 'one reason per hook tried before');
  for (const [i, reason] of rtt.refused.entries()) {
    assert.match(reason, new RegExp(`^${HEALTH_HOOKS.rtt[i].hook}: not (loaded|attached), \\S`));
  }
});

test('a health object that does not match this flowtap is refused with InputError, nothing left loaded', {
  skip,
}, () => {
  const fdsBefore = bpfFdCount();
  const maps = SectionMaps.create(HEALTH_SECTION, 64);
  try {
    assert.throws(
      () =>
        HealthPrograms.load({
          features: ['drops'],
          mode: 'auto',
          dedup: true,
          healthMapFd: maps.outerFd,
          countersFd: maps.outerFd,
          objectPath: FLOWS_OBJECT_PATH,
        }),
      (err: unknown) => err instanceof InputError && /has no program flowtap_drop_tp/.test(err.message),
    );
  } finally {
    maps.close();
  }
  assert.equal(bpfFdCount(), fdsBefore);
});

test('the health programs of a killed flowtap vanish with its process', { skip }, async (t) => {
  const pair = await createVethPair('fthl2');
  t.after(() => pair.cleanup());
  const before = await healthProgramsLoaded();
  const crashed = startFixture({ health: ALL_ON }, pair.hostIf);
  t.after(async () => {
    if (crashed.child.exitCode === null) crashed.child.kill('SIGKILL');
    await waitForExit(crashed.child);
  });
  assert.equal(await crashed.firstLine, 'READY');
  assert.equal(await healthProgramsLoaded(), before + enabledFeatures(ALL_ON).length);
  crashed.child.kill('SIGKILL');
  await waitForExit(crashed.child);
  // The kernel frees a program once its last link and fd are gone, shortly after the exit.
  const deadline = Date.now() + 10_000;
  while ((await healthProgramsLoaded()) !== before) {
    assert.ok(Date.now() < deadline, 'the killed run left its health programs loaded');
    await new Promise((resolve) => setImmediate(resolve));
  }
  await assertNothingLeft(pair.hostIf, bpfFdCount());
});
