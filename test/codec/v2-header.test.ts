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
import {
  HealthFlag,
  RecordFlag,
  TunnelType,
  V2,
  V2_EVENT_BYTES,
  V2_HEALTH_BYTES,
  V2_HEALTH_WORD,
  V2_KEY_BYTES,
  V2_MAX_CROSSED,
  V2_METRICS_BYTES,
  V2_RECORD_BYTES,
  V2_USER_BYTES,
} from '../../src/codec/v2-layout.ts';

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
  ['VLAN_OUTER', 'key.vlan_outer'],
  ['VLAN_INNER', 'key.vlan_inner'],
  ['KEY_PAD', 'key.key_pad'],
  ['BYTES', 'metrics.bytes'],
  ['PACKETS', 'metrics.packets'],
  ['FIRST_SEEN_NS', 'metrics.first_seen_ns'],
  ['LAST_SEEN_NS', 'metrics.last_seen_ns'],
  ['TCP_FLAGS', 'metrics.tcp_flags'],
  ['DSCP', 'metrics.dscp'],
  ['TUNNEL_TYPE', 'metrics.tunnel_type'],
  ['TUNNEL_ID', 'metrics.tunnel_id'],
  ['TUNNEL_SRC', 'metrics.tunnel_src'],
  ['TUNNEL_DST', 'metrics.tunnel_dst'],
  ['CROSSED_IF_INDEX', 'metrics.crossed_if_index'],
  ['CROSSED_DIRECTION', 'metrics.crossed_direction'],
  ['CROSSED_COUNT', 'metrics.crossed_count'],
  ['METRICS_PAD0', 'metrics.metrics_pad0'],
  ['DEDUP_SRC_MAC', 'metrics.dedup_src_mac'],
  ['DEDUP_DST_MAC', 'metrics.dedup_dst_mac'],
  ['METRICS_PAD', 'metrics.metrics_pad'],
  ['AGENT_IP', 'user.agent_ip'],
  ['REV_BYTES', 'user.rev_bytes'],
  ['REV_PACKETS', 'user.rev_packets'],
  ['REV_FIRST_SEEN_NS', 'user.rev_first_seen_ns'],
  ['REV_LAST_SEEN_NS', 'user.rev_last_seen_ns'],
  ['REV_TCP_FLAGS', 'user.rev_tcp_flags'],
  ['REV_DSCP', 'user.rev_dscp'],
  ['RECORD_FLAGS', 'user.record_flags'],
  ['USER_PAD', 'user.user_pad'],
  ['RTT_MIN_NS', 'health.rtt_min_ns'],
  ['RTT_MAX_NS', 'health.rtt_max_ns'],
  ['RTT_LAST_NS', 'health.rtt_last_ns'],
  ['HANDSHAKE_RTT_NS', 'health.handshake_rtt_ns'],
  ['DROP_BYTES', 'health.drop_bytes'],
  ['DROP_PACKETS', 'health.drop_packets'],
  ['RETRANS_BYTES', 'health.retrans_bytes'],
  ['RETRANS_PACKETS', 'health.retrans_packets'],
  ['DROP_LATEST_NS', 'health.drop_latest_ns'],
  ['DROP_LATEST_CAUSE', 'health.drop_latest_cause'],
  ['DROP_LATEST_FLAGS', 'health.drop_latest_flags'],
  ['DROP_LATEST_STATE', 'health.drop_latest_state'],
  ['HEALTH_FLAGS', 'health.health_flags'],
  ['RTT_SAMPLES', 'health.rtt_samples'],
  ['HEALTH_PAD', 'health.health_pad'],
];

/** Constants the header and the TypeScript layout must give the same value. */
const CONSTANTS: Array<[string, number]> = [
  ['FLOWTAP_MAX_CROSSED', V2_MAX_CROSSED],
  ['FLOWTAP_TUNNEL_NONE', TunnelType.NONE],
  ['FLOWTAP_TUNNEL_VXLAN', TunnelType.VXLAN],
  ['FLOWTAP_TUNNEL_GENEVE', TunnelType.GENEVE],
  ['FLOWTAP_TUNNEL_GRE', TunnelType.GRE],
  ['FLOWTAP_TUNNEL_IPIP', TunnelType.IPIP],
  ['FLOWTAP_RECORD_BIFLOW', RecordFlag.BIFLOW],
  ['FLOWTAP_HEALTH_RTT', HealthFlag.RTT],
  ['FLOWTAP_HEALTH_HANDSHAKE', HealthFlag.HANDSHAKE],
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
    ...CONSTANTS.map(([name]) => `  printf("${name} %d\\n", (int)(${name}));`),
    '  printf("KEY %zu\\nMETRICS %zu\\nUSER %zu\\nEVENT %zu\\nRECORD %zu\\n", sizeof(struct flow_key), sizeof(struct flow_metrics), sizeof(struct flow_user), sizeof(struct flow_event), sizeof(struct flow_record));',
    '  printf("EVENT_METRICS %zu\\n", offsetof(struct flow_event, metrics));',
    '  printf("HEALTH %zu\\nHEALTH_AT %zu\\n", sizeof(struct flow_health), offsetof(struct flow_record, health));',
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
  for (const [name, value] of CONSTANTS) assert.equal(printed[name], value, name);
  assert.equal(printed.KEY, V2_KEY_BYTES);
  assert.equal(printed.METRICS, V2_METRICS_BYTES);
  assert.equal(printed.USER, V2_USER_BYTES);
  assert.equal(printed.EVENT, V2_EVENT_BYTES);
  assert.equal(printed.EVENT_METRICS, V2_KEY_BYTES, 'an event is a record without its user section');
  assert.equal(printed.RECORD, V2_RECORD_BYTES);
  assert.equal(printed.HEALTH, V2_HEALTH_BYTES);
  for (const [name, word] of Object.entries(V2_HEALTH_WORD)) {
    const field = name === 'DROP_FLAGS_STATE' ? 'DROP_LATEST_FLAGS' : name === 'PAD' ? 'HEALTH_PAD' : name;
    assert.equal(printed.HEALTH_AT + word * 4, V2[field as keyof typeof V2], `health word of ${name}`);
  }
});
