import assert from 'node:assert/strict';
import { test } from 'node:test';
import { kernelFeatures, requireCapabilities, requireKernelFeatures } from '../../src/ebpf/features.ts';
import { NotSupportedError, PermissionError } from '../../src/errors.ts';

const ALL_CAPABILITIES = '000001ffffffffff';
const CAP_BPF_PERFMON_ONLY = (2n ** 39n + 2n ** 38n).toString(16);
const CAP_SYS_AND_NET_ADMIN = (2n ** 21n + 2n ** 12n).toString(16);

test('a process with every capability may capture live', () => {
  assert.doesNotThrow(() => requireCapabilities(ALL_CAPABILITIES));
});

test('CAP_SYS_ADMIN stands in for CAP_BPF and CAP_PERFMON', () => {
  assert.doesNotThrow(() => requireCapabilities(CAP_SYS_AND_NET_ADMIN));
});

test('a process without capabilities is told which are missing, to run as root, or to read a pcap file', () => {
  assert.throws(
    () => requireCapabilities('0'),
    (err) =>
      err instanceof PermissionError &&
      /CAP_BPF and CAP_PERFMON and CAP_NET_ADMIN/.test(err.message) &&
      /run flowtap as root/.test(err.message) &&
      /flowtap read FILE/.test(err.message),
  );
});

test('a process with CAP_BPF but without CAP_NET_ADMIN is told only CAP_NET_ADMIN is missing', () => {
  assert.throws(
    () => requireCapabilities(CAP_BPF_PERFMON_ONLY),
    (err) => err instanceof PermissionError && /needs CAP_NET_ADMIN,/.test(err.message),
  );
});

test('a kernel without BTF is reported as NotSupportedError naming BTF and pcap mode', () => {
  assert.throws(
    () => requireKernelFeatures({ btf: false, ringBuffer: true, tcx: true, perCpuDedup: true }),
    (err) =>
      err instanceof NotSupportedError && err.feature === 'BTF' && /flowtap read FILE/.test(err.message),
  );
});

test('a kernel without ring buffers is reported as NotSupportedError naming the kernel that has them', () => {
  assert.throws(
    () => requireKernelFeatures({ btf: true, ringBuffer: false, tcx: false, perCpuDedup: false }),
    (err) =>
      err instanceof NotSupportedError && err.feature === 'BPF ring buffer' && /Linux 5\.8/.test(err.message),
  );
});

test('the kernel features are probed once and the same answer is returned after', () => {
  assert.equal(kernelFeatures(), kernelFeatures());
});
