import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  enabledFeatures,
  HEALTH_FEATURES,
  HEALTH_HOOKS,
  HEALTH_OFF,
  hookCandidates,
} from '../../src/ebpf/health-hooks.ts';
import { HEALTH_OBJECT_PATH, unavailableMessage } from '../../src/ebpf/health-programs.ts';
import { libbpf } from '../../src/ebpf/libbpf.ts';

/** Names of the programs in the committed health object (opening it needs no privilege). */
function objectPrograms(): string[] {
  const lib = libbpf();
  const obj: bigint = lib.objectOpenFile(HEALTH_OBJECT_PATH, null);
  assert.ok(obj, 'the committed health object opens');
  try {
    const programs: string[] = [];
    for (
      let prog: bigint | null = lib.objectNextProgram(obj, null);
      prog;
      prog = lib.objectNextProgram(obj, prog)
    ) {
      programs.push(lib.programName(prog));
    }
    return programs;
  } finally {
    lib.objectClose(obj);
  }
}

test('every hook of the catalogue is a program of bpf/health.bpf.o, and every program there is in the catalogue', () => {
  const inObject = objectPrograms().sort();
  const inCatalogue = HEALTH_FEATURES.flatMap((f) => HEALTH_HOOKS[f].map((h) => h.program)).sort();
  assert.deepEqual(inCatalogue, inObject);
});

test('each feature prefers a BTF-typed hook and ends with a raw tracepoint it can always fall back to', () => {
  for (const feature of HEALTH_FEATURES) {
    const hooks = HEALTH_HOOKS[feature];
    assert.equal(hooks[0].raw, false, `${feature} tries a typed hook first`);
    assert.equal(hooks.at(-1)?.raw, true, `${feature} falls back to a raw tracepoint`);
  }
  assert.equal(HEALTH_HOOKS.rtt[0].hook, 'fentry/tcp_rcv_established');
});

test('HEALTH_HOOKS=tracepoint leaves each feature only its raw tracepoints, auto every hook in order', () => {
  for (const feature of HEALTH_FEATURES) {
    assert.deepEqual(hookCandidates(feature, 'auto'), HEALTH_HOOKS[feature]);
    const forced = hookCandidates(feature, 'tracepoint');
    assert.ok(forced.length > 0);
    assert.ok(forced.every((h) => h.raw && h.hook.startsWith('raw_tp/')));
  }
});

test('the features switched on are listed in load order; none with health off', () => {
  assert.deepEqual(enabledFeatures(HEALTH_OFF), []);
  assert.deepEqual(enabledFeatures({ rtt: true, retrans: false, drops: true, hooks: 'auto' }), [
    'rtt',
    'drops',
  ]);
});

test('the line of a feature without a hook names its setting, every refusal and what the kernel needs', () => {
  const message = unavailableMessage({
    feature: 'drops',
    hook: undefined,
    refused: ['tp_btf/kfree_skb: not loaded, EINVAL', 'raw_tp/kfree_skb: not attached, EINVAL'],
  });
  assert.match(message, /^ENABLE_PKT_DROPS is on, but this kernel refused every hook for it/);
  assert.match(message, /tp_btf\/kfree_skb: not loaded, EINVAL; raw_tp\/kfree_skb: not attached, EINVAL/);
  assert.match(message, /Linux 5\.17/);
});
