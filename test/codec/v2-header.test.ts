/**
 * Proves bpf/flow_record.h and src/codec/v2-layout.ts describe the same bytes: a C program built
 * from the header prints every offsetof/sizeof, and each must equal the TypeScript constant.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { V2, V2_KEY_BYTES, V2_METRICS_BYTES, V2_RECORD_BYTES } from '../../src/codec/v2-layout.ts';

const HEADER = new URL('../../bpf/flow_record.h', import.meta.url).pathname;

const FIELDS: Array<[keyof typeof V2, string]> = [
  ['ETH_PROTOCOL', 'key.eth_protocol'],
  ['DIRECTION', 'key.direction'],
  ['TRANSPORT_PROTOCOL', 'key.transport_protocol'],
  ['SRC_MAC', 'key.src_mac'],
  ['DST_MAC', 'key.dst_mac'],
  ['SRC_ADDR', 'key.src_addr'],
  ['DST_ADDR', 'key.dst_addr'],
  ['SRC_PORT', 'key.src_port'],
  ['DST_PORT', 'key.dst_port'],
  ['IF_INDEX', 'key.if_index'],
  ['ICMP_TYPE', 'key.icmp_type'],
  ['ICMP_CODE', 'key.icmp_code'],
  ['KEY_PAD', 'key.key_pad'],
  ['BYTES', 'metrics.bytes'],
  ['PACKETS', 'metrics.packets'],
  ['FIRST_SEEN_NS', 'metrics.first_seen_ns'],
  ['LAST_SEEN_NS', 'metrics.last_seen_ns'],
  ['TCP_FLAGS', 'metrics.tcp_flags'],
  ['DSCP', 'metrics.dscp'],
  ['METRICS_PAD', 'metrics.metrics_pad'],
];

test('the C header and the TypeScript layout agree on every offset and size', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-layout-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const program = [
    '#include <stdio.h>',
    '#include <stddef.h>',
    `#include "${HEADER}"`,
    'int main(void) {',
    ...FIELDS.map(([name, member]) => `  printf("${name} %zu\\n", offsetof(struct flow_record, ${member}));`),
    '  printf("KEY %zu\\nMETRICS %zu\\nRECORD %zu\\n", sizeof(struct flow_key), sizeof(struct flow_metrics), sizeof(struct flow_record));',
    '  return 0;',
    '}',
  ].join('\n');
  writeFileSync(join(dir, 'layout.c'), program);
  execFileSync('cc', ['-Wall', '-Werror', '-o', join(dir, 'layout'), join(dir, 'layout.c')]);
  const printed = Object.fromEntries(
    execFileSync(join(dir, 'layout'), { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map((line) => line.split(' '))
      .map(([k, v]) => [k, Number(v)]),
  );
  for (const [name] of FIELDS) assert.equal(printed[name], V2[name], `offset of ${name}`);
  assert.equal(printed.KEY, V2_KEY_BYTES);
  assert.equal(printed.METRICS, V2_METRICS_BYTES);
  assert.equal(printed.RECORD, V2_RECORD_BYTES);
});
