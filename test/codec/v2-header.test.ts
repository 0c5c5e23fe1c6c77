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
  DNS_PENDING_BYTES,
  DNS_QUERY_KEY,
  DNS_QUERY_KEY_BYTES,
  DnsErrno,
  DnsFlag,
  DnsLimit,
  HealthFlag,
  RecordFlag,
  TunnelType,
  V2,
  V2_DNS_BYTES,
  V2_DNS_NAME_MAX,
  V2_DNS_WORD,
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
  ['DNS_LATENCY_NS', 'dns.dns_latency_ns'],
  ['DNS_LATEST_NS', 'dns.dns_latest_ns'],
  ['DNS_QUERIES', 'dns.dns_queries'],
  ['DNS_ANSWERS', 'dns.dns_answers'],
  ['DNS_UNANSWERED', 'dns.dns_unanswered'],
  ['DNS_MALFORMED', 'dns.dns_malformed'],
  ['DNS_ID', 'dns.dns_id'],
  ['DNS_FLAGS', 'dns.dns_flags'],
  ['DNS_NAME_LEN', 'dns.dns_name_len'],
  ['DNS_ERRNO', 'dns.dns_errno'],
  ['DNS_RECORD_FLAGS', 'dns.dns_record_flags'],
  ['DNS_PAD', 'dns.dns_pad'],
  ['DNS_NAME', 'dns.dns_name'],
];

/** Fields of struct flow_dns_query_key, the pending-query map's key. */
const QUERY_KEY_FIELDS: Array<[keyof typeof DNS_QUERY_KEY, string]> = [
  ['SRC_ADDR', 'src_addr'],
  ['DST_ADDR', 'dst_addr'],
  ['SRC_PORT', 'src_port'],
  ['DST_PORT', 'dst_port'],
  ['DNS_ID', 'dns_id'],
  ['TRANSPORT_PROTOCOL', 'transport_protocol'],
  ['KEY_PAD', 'key_pad'],
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
  ['FLOWTAP_DNS_HEADER', DnsFlag.HEADER],
  ['FLOWTAP_DNS_NAME', DnsFlag.NAME],
  ['FLOWTAP_DNS_NAME_TRUNCATED', DnsFlag.NAME_TRUNCATED],
  ['FLOWTAP_DNS_LATENCY', DnsFlag.LATENCY],
  ['FLOWTAP_DNS_NAME_MAX', V2_DNS_NAME_MAX],
  ['FLOWTAP_DNS_PENDING_MAX', DnsLimit.PENDING_MAX],
  ['FLOWTAP_DNS_ENOENT', DnsErrno.ENOENT],
  ['FLOWTAP_DNS_EFAULT', DnsErrno.EFAULT],
  ['FLOWTAP_DNS_EINVAL', DnsErrno.EINVAL],
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
    '  printf("DNS %zu\\nDNS_AT %zu\\n", sizeof(struct flow_dns), offsetof(struct flow_record, dns));',
    ...QUERY_KEY_FIELDS.map(
      ([name, member]) =>
        `  printf("QUERY_KEY_${name} %zu\\n", offsetof(struct flow_dns_query_key, ${member}));`,
    ),
    '  printf("QUERY_KEY %zu\\nPENDING %zu\\n", sizeof(struct flow_dns_query_key), sizeof(struct flow_dns_pending));',
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
  assert.equal(printed.DNS, V2_DNS_BYTES);
  const dnsWordField: Record<string, keyof typeof V2> = {
    ID_FLAGS: 'DNS_ID',
    NAME_LEN_ERRNO_FLAGS: 'DNS_NAME_LEN',
  };
  for (const [name, word] of Object.entries(V2_DNS_WORD)) {
    const field = dnsWordField[name] ?? (`DNS_${name}` as keyof typeof V2);
    assert.equal(printed.DNS_AT + word * 4, V2[field], `DNS word of ${name}`);
  }
  for (const [name] of QUERY_KEY_FIELDS) {
    assert.equal(printed[`QUERY_KEY_${name}`], DNS_QUERY_KEY[name], `query key offset of ${name}`);
  }
  assert.equal(printed.QUERY_KEY, DNS_QUERY_KEY_BYTES);
  assert.equal(printed.PENDING, DNS_PENDING_BYTES);
});
