import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { VMLINUX_BTF_PATH } from '../../src/ebpf/btf.ts';
import { dropReasonsFromBtf, loadDropReasons } from '../../src/ebpf/drop-reasons.ts';
import { DropReasonNames, NUMERIC_DROP_REASONS } from '../../src/model/drop-reasons.ts';
import { btfBlob, enumType } from './btf-blob.ts';

const KERNEL_LIKE = btfBlob([
  enumType('', [
    ['TCP_ESTABLISHED', 1],
    ['TCP_SYN_SENT', 2],
    ['TCP_TIME_WAIT', 6],
    ['TCP_FUTURE_STATE', 14],
    ['TCP_MAX_STATES', 15],
  ]),
  enumType('skb_drop_reason', [
    ['SKB_NOT_DROPPED_YET', 0],
    ['SKB_CONSUMED', 1],
    ['SKB_DROP_REASON_NOT_SPECIFIED', 2],
    ['SKB_DROP_REASON_NETFILTER_DROP', 8],
    ['SKB_DROP_REASON_MAX', 9],
  ]),
]);

/** Collects the warnings a load gives. */
function warnings(): { list: string[]; warn: (m: string) => void } {
  const list: string[] = [];
  return { list, warn: (m) => list.push(m) };
}

test('drop reasons are named as the BTF spells them: short without SKB_DROP_REASON_, and in full', () => {
  const w = warnings();
  const names = dropReasonsFromBtf(KERNEL_LIKE, 'test blob', w.warn);
  assert.deepEqual(w.list, []);
  assert.equal(names.hasReasonNames, true);
  assert.equal(names.nameOf(8), 'NETFILTER_DROP');
  assert.equal(names.kernelNameOf(8), 'SKB_DROP_REASON_NETFILTER_DROP');
  assert.equal(names.nameOf(1), 'SKB_CONSUMED');
  assert.equal(names.kernelNameOf(1), 'SKB_CONSUMED');
});

test('a drop reason the table does not hold, and the MAX sentinel, are UNKNOWN_<n>', () => {
  const names = dropReasonsFromBtf(KERNEL_LIKE, 'test blob');
  assert.equal(names.nameOf(9), 'UNKNOWN_9');
  assert.equal(names.kernelNameOf(0x30001), 'UNKNOWN_196609');
  assert.equal(names.reasonCount, 4);
});

test("TCP states come from the kernel's enum, including states newer than the stable list", () => {
  const names = dropReasonsFromBtf(KERNEL_LIKE, 'test blob');
  assert.equal(names.tcpStateName(6), 'TCP_TIME_WAIT');
  assert.equal(names.tcpStateName(14), 'TCP_FUTURE_STATE');
  assert.equal(names.tcpStateName(15), 'UNKNOWN_15');
  assert.equal(names.tcpStateName(0), 'UNKNOWN_0');
});

test('a missing BTF file gives numbered drop reasons, stable TCP state names and one warning', () => {
  const w = warnings();
  const names = loadDropReasons('/nonexistent/btf/vmlinux', w.warn);
  assert.equal(w.list.length, 1);
  assert.match(
    w.list[0] ?? '',
    /shown as numbers: .*\/nonexistent\/btf\/vmlinux.*ENOENT.*CONFIG_DEBUG_INFO_BTF/,
  );
  assert.equal(names.hasReasonNames, false);
  assert.equal(names.nameOf(8), '8');
  assert.equal(names.kernelNameOf(8), '8');
  assert.equal(names.tcpStateName(1), 'TCP_ESTABLISHED');
});

test('a file that is not BTF gives numbered drop reasons and one warning naming the problem', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-btf-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'vmlinux');
  writeFileSync(path, 'not btf at all, just text');
  const w = warnings();
  const names = loadDropReasons(path, w.warn);
  assert.equal(w.list.length, 1);
  assert.match(w.list[0] ?? '', /shown as numbers: unreadable BTF at byte offset 0: magic/);
  assert.equal(names.nameOf(2), '2');
});

test('a BTF without enum skb_drop_reason (a kernel before 5.17) gives numbers and says why', () => {
  const w = warnings();
  const names = dropReasonsFromBtf(btfBlob([enumType('other', [['A', 1]])]), 'old kernel', w.warn);
  assert.equal(w.list.length, 1);
  assert.match(w.list[0] ?? '', /old kernel has no enum skb_drop_reason .*5\.17/);
  assert.equal(names.nameOf(8), '8');
  assert.equal(names.tcpStateName(12), 'TCP_NEW_SYN_RECV');
});

test('names without a table are numbers for drop reasons and the stable list for TCP states', () => {
  assert.equal(NUMERIC_DROP_REASONS.nameOf(77), '77');
  assert.equal(NUMERIC_DROP_REASONS.tcpStateName(10), 'TCP_LISTEN');
  assert.equal(new DropReasonNames(new Map([[5, 'SKB_DROP_REASON_X']])).nameOf(5), 'X');
});

test("the running kernel's drop reasons and TCP states are named from its own BTF", (t) => {
  if (!existsSync(VMLINUX_BTF_PATH)) return t.skip(`${VMLINUX_BTF_PATH} is missing: this kernel has no BTF`);
  const w = warnings();
  const names = loadDropReasons(VMLINUX_BTF_PATH, w.warn);
  assert.deepEqual(w.list, []);
  assert.ok(names.reasonCount > 60, `${names.reasonCount} reasons`);
  assert.equal(names.nameOf(2), 'NOT_SPECIFIED');
  assert.equal(names.kernelNameOf(2), 'SKB_DROP_REASON_NOT_SPECIFIED');
  assert.equal(names.tcpStateName(1), 'TCP_ESTABLISHED');
  assert.equal(names.tcpStateName(6), 'TCP_TIME_WAIT');
});
