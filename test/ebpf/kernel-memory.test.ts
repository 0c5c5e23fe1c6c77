import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { V2_HEALTH_BYTES, V2_KEY_BYTES, V2_METRICS_BYTES } from '../../src/codec/v2-layout.ts';
import {
  dnsMapsBytes,
  flowMapBytes,
  HANDSHAKE_PENDING_ENTRIES,
  HANDSHAKE_PENDING_VALUE_BYTES,
  HEALTH_MAP_COUNT,
  handshakeMapBytes,
  healthMapBytes,
  healthMapEntries,
  kernelMemory,
  planKernelMemory,
  ringBufferMemoryBytes,
  SHARED_MAP_MIN_CPUS,
} from '../../src/ebpf/kernel-memory.ts';
import { BPF_F_NO_PREALLOC, BpfMapType, libbpf, mapCreateOpts } from '../../src/ebpf/libbpf.ts';
import { ConfigError } from '../../src/errors.ts';
import { skipUnlessKernel } from '../helpers/privileges.ts';

const MIB = 2 ** 20;
const RING = 1 << 24;

test('two per-CPU flow maps cost entries times CPUs times the metrics value each, plus the hash overhead', () => {
  const flows = 1 << 24;
  const memory = kernelMemory({
    maxFlows: flows,
    ringBufferBytes: RING,
    possibleCpus: 64,
    mapKind: 'percpu',
  });
  // per-CPU values alone: 2^24 x 64 x 120 B = 120 GiB per map
  assert.ok(memory.flowMapBytes > flows * 64 * V2_METRICS_BYTES);
  assert.ok(memory.flowMapBytes < flows * (64 * V2_METRICS_BYTES + 200));
  assert.equal(memory.totalBytes, 2 * memory.flowMapBytes + memory.ringBufferBytes + memory.otherBytes);
  assert.ok(memory.ringBufferBytes > RING);
});

test('a shared flow map does not grow with the CPU count but for a spare element per CPU', () => {
  const on2 = flowMapBytes(100_000, 2, 'shared');
  const on64 = flowMapBytes(100_000, 64, 'shared');
  assert.ok(on64 - on2 < 62 * (V2_KEY_BYTES + V2_METRICS_BYTES + 100));
  assert.ok(flowMapBytes(100_000, 64, 'percpu') > 10 * on64);
});

test('auto picks the per-CPU map below the CPU threshold and the shared map from it on', () => {
  const input = { maxFlows: 1000, ringBufferBytes: RING, maxBytes: 256 * MIB, mapKind: 'auto' as const };
  assert.equal(planKernelMemory({ ...input, possibleCpus: SHARED_MAP_MIN_CPUS - 1 }).mapKind, 'percpu');
  assert.equal(planKernelMemory({ ...input, possibleCpus: SHARED_MAP_MIN_CPUS }).mapKind, 'shared');
  assert.equal(planKernelMemory({ ...input, possibleCpus: 64, mapKind: 'percpu' }).mapKind, 'percpu');
});

test('a setting over the kernel memory budget is refused with the figure, the flows that fit and what to change', () => {
  assert.throws(
    () =>
      planKernelMemory({
        maxFlows: 100_000,
        ringBufferBytes: RING,
        possibleCpus: 64,
        mapKind: 'percpu',
        maxBytes: 256 * MIB,
      }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.exitCode, 2);
      assert.equal(err.setting, 'CACHE_MAX_FLOWS');
      assert.match(err.message, /100000 flows need 1\.\d\d GiB of kernel memory/);
      assert.match(err.message, /KERNEL_MEMORY_MAX=256\.00 MiB/);
      assert.match(err.message, /lower CACHE_MAX_FLOWS to \d+ or less/);
      assert.match(err.message, /KERNEL_MAP_KIND=shared/);
      return true;
    },
  );
});

test('the flow count the refusal suggests fits the budget and one more does not', () => {
  const input = { ringBufferBytes: RING, possibleCpus: 64, mapKind: 'percpu' as const };
  let suggested = 0;
  try {
    planKernelMemory({ ...input, maxFlows: 1 << 24, maxBytes: 256 * MIB });
  } catch (err) {
    suggested = Number(/to (\d+) or less/.exec((err as Error).message)?.[1]);
  }
  assert.ok(suggested > 0);
  assert.ok(kernelMemory({ ...input, maxFlows: suggested }).totalBytes <= 256 * MIB);
  assert.ok(kernelMemory({ ...input, maxFlows: suggested + 1 }).totalBytes > 256 * MIB);
});

test('a ring buffer larger than the whole budget is refused even for one flow', () => {
  assert.throws(
    () =>
      planKernelMemory({
        maxFlows: 1,
        ringBufferBytes: 1 << 30,
        possibleCpus: 2,
        mapKind: 'auto',
        maxBytes: 256 * MIB,
      }),
    /lower CACHE_MAX_FLOWS to 0 or less, or raise KERNEL_MEMORY_MAX/,
  );
});

/** The kernel's own figure for map `fd` (memlock in /proc/self/fdinfo). */
function kernelMemlock(fd: number): number {
  return Number(/memlock:\s+(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1]);
}

const rootOnly = skipUnlessKernel('create eBPF maps');

test('the estimate matches what the kernel accounts for the flow maps and the ring buffer', {
  skip: rootOnly,
}, (t) => {
  const lib = libbpf();
  const cpus: number = lib.numPossibleCpus();
  const cases = [
    ['percpu', BpfMapType.PERCPU_HASH, 1000],
    ['percpu', BpfMapType.PERCPU_HASH, 100_000],
    ['shared', BpfMapType.HASH, 1000],
    ['shared', BpfMapType.HASH, 100_000],
  ] as const;
  for (const [kind, type, flows] of cases) {
    const fd: number = lib.mapCreate(
      type,
      'flowtap_memtest',
      V2_KEY_BYTES,
      V2_METRICS_BYTES,
      flows,
      mapCreateOpts(),
    );
    assert.ok(fd >= 0, `creating a ${kind} map`);
    t.after(() => lib.close(fd));
    const measured = kernelMemlock(fd);
    const estimate = flowMapBytes(flows, cpus, kind);
    assert.ok(
      Math.abs(estimate - measured) <= measured * 0.01,
      `${kind} ${flows}: ${estimate} vs ${measured}`,
    );
  }
  const ring: number = lib.mapCreate(BpfMapType.RINGBUF, 'flowtap_memtest', 0, 0, RING, mapCreateOpts());
  assert.ok(ring >= 0, 'creating a ring buffer');
  t.after(() => lib.close(ring));
  const measured = kernelMemlock(ring);
  assert.ok(Math.abs(ringBufferMemoryBytes(RING) - measured) <= measured * 0.01, `ring: ${measured}`);
});

test('with TCP health on the budget counts both health maps as if full and, with RTT, the pending handshakes', () => {
  const input = { maxFlows: 1 << 17, ringBufferBytes: RING, possibleCpus: 2, mapKind: 'percpu' as const };
  const off = kernelMemory(input);
  const on = kernelMemory({ ...input, health: true, handshake: true });
  assert.equal(off.healthMapBytes, 0);
  assert.equal(healthMapEntries(1 << 17), 1 << 15);
  assert.equal(on.healthMapBytes, healthMapBytes(1 << 15));
  assert.equal(on.totalBytes, off.totalBytes + HEALTH_MAP_COUNT * on.healthMapBytes + handshakeMapBytes());
  assert.equal(healthMapEntries(10), 1024, 'a small cache still gets a usable health map');
});

test('with DNS tracking on the budget counts both DNS maps as if full, the pending queries and the TCP streams', () => {
  const input = { maxFlows: 1 << 17, ringBufferBytes: RING, possibleCpus: 2, mapKind: 'percpu' as const };
  const off = kernelMemory(input);
  const on = kernelMemory({ ...input, dns: true });
  assert.equal(off.dnsBytes, 0);
  assert.equal(on.dnsBytes, dnsMapsBytes(healthMapEntries(1 << 17)));
  assert.equal(on.totalBytes, off.totalBytes + on.dnsBytes);
  // Two maps of 32 768 sections of 168 bytes and more, plus 4096 pending queries of 216 bytes and more.
  assert.ok(on.dnsBytes > 2 * (1 << 15) * 168 + 4096 * 216, `${on.dnsBytes}`);
});

test('the health map estimate matches what the kernel accounts once it is full, and the handshake LRU as created', {
  skip: rootOnly,
}, (t) => {
  const lib = libbpf();
  const entries = 2000;
  const fd: number = lib.mapCreate(
    BpfMapType.HASH,
    'flowtap_memtest',
    V2_KEY_BYTES,
    V2_HEALTH_BYTES,
    entries,
    mapCreateOpts({ mapFlags: BPF_F_NO_PREALLOC }),
  );
  assert.ok(fd >= 0, 'creating a health map');
  t.after(() => lib.close(fd));
  const key = Buffer.alloc(V2_KEY_BYTES);
  const value = Buffer.alloc(V2_HEALTH_BYTES);
  for (let i = 0; i < entries; i++) {
    key.writeUInt32LE(i, 0);
    assert.equal(lib.mapUpdateElem(fd, key, value, 0n), 0);
  }
  const measured = kernelMemlock(fd);
  assert.ok(Math.abs(healthMapBytes(entries) - measured) <= measured * 0.01, `health: ${measured}`);
  const LRU_HASH = 9;
  const lru: number = lib.mapCreate(
    LRU_HASH,
    'flowtap_memtest',
    V2_KEY_BYTES,
    HANDSHAKE_PENDING_VALUE_BYTES,
    HANDSHAKE_PENDING_ENTRIES,
    mapCreateOpts(),
  );
  assert.ok(lru >= 0, 'creating an LRU hash');
  t.after(() => lib.close(lru));
  const lruMeasured = kernelMemlock(lru);
  assert.ok(Math.abs(handshakeMapBytes() - lruMeasured) <= lruMeasured * 0.01, `handshakes: ${lruMeasured}`);
});
