/**
 * Filter test vectors: (filter, packet) → match, over every parsable frame of
 * test/vectors/packets.ts run as ingress. Each entry lists the vectors its filter accepts; every
 * other parsable vector must be rejected. Used by the kernel program (test/ebpf/filter.test.ts,
 * BPF_PROG_TEST_RUN) and the offline evaluator (test/filter/evaluate.test.ts), so the two cannot
 * drift. Parse-error vectors are left out: they are counted as parse errors before any filter.
 */

/** Names of vectors, grouped for readability. */
const V4_TCP = ['ipv4 tcp syn with dscp EF', 'ipv4 tcp with NS, CWR, ECE and ACK flags'];
const V4_UDP = [
  'ipv4 udp with payload',
  'ipv4 with options (IHL 7) and udp',
  'ipv4 first fragment keeps its ports',
  'ipv4 later fragment counts without ports',
];
const V4_ICMP = ['ipv4 icmp echo request', 'ipv4 icmp port unreachable'];
const V4_OTHER = ['ipv4 sctp', 'ipv4 gre has no ports'];
const TAGGED = [
  '802.1Q tagged ipv4 udp',
  '802.1ad + 802.1Q (QinQ) tagged ipv4 tcp',
  '802.1Q tagged ipv6 udp',
];
const V6_TCP = [
  'ipv6 tcp with traffic class AF41',
  'ipv6 routing header then tcp',
  'ipv6 authentication header then tcp',
];
const V6_UDP = [
  'ipv6 udp',
  'ipv6 hop-by-hop then udp',
  'ipv6 destination options (16 bytes) then udp',
  'ipv6 first fragment keeps its ports',
  'ipv6 later fragment counts without ports',
];
const V6_ICMP = [
  'ipv6 icmpv6 echo request',
  'ipv6 icmpv6 neighbor solicitation',
  'ipv6 hop-by-hop, destination options and routing then icmpv6',
];
const V6_OTHER = ['ipv6 sctp', 'ipv6 esp has no ports'];
const NON_IP = ['arp request is counted without addresses', 'lldp (non-ip) is counted without addresses'];
const V4 = [...V4_TCP, ...V4_UDP, ...V4_ICMP, ...V4_OTHER, TAGGED[0], TAGGED[1]];
const V6_LINK_LOCAL = ['ipv6 icmpv6 neighbor solicitation'];
const V6 = [...V6_TCP, ...V6_UDP, ...V6_ICMP, ...V6_OTHER, TAGGED[2]];
const without = (all: string[], drop: string[]) => all.filter((n) => !drop.includes(n));

/** One expression and the vectors it accepts. */
export interface ExpressionVector {
  /** pcap-filter expression. */
  expression: string;
  /** Names of the packet vectors it accepts. */
  accepts: readonly string[];
}

/** Expressions and what they accept. */
export const EXPRESSION_VECTORS: readonly ExpressionVector[] = [
  { expression: '', accepts: [...V4, ...V6, ...NON_IP] },
  { expression: 'ip', accepts: V4 },
  { expression: 'ip6', accepts: V6 },
  { expression: 'not ip and not ip6', accepts: NON_IP },
  { expression: 'tcp', accepts: [...V4_TCP, TAGGED[1], ...V6_TCP] },
  { expression: 'udp', accepts: [...V4_UDP, TAGGED[0], ...V6_UDP, TAGGED[2]] },
  { expression: 'icmp', accepts: V4_ICMP },
  { expression: 'icmp6', accepts: V6_ICMP },
  { expression: 'sctp', accepts: ['ipv4 sctp', 'ipv6 sctp'] },
  { expression: 'ip proto 47', accepts: ['ipv4 gre has no ports'] },
  { expression: 'ip6 proto 50', accepts: ['ipv6 esp has no ports'] },
  { expression: 'proto 17 and ip6', accepts: [...V6_UDP, TAGGED[2]] },
  { expression: 'port 80', accepts: ['ipv4 tcp syn with dscp EF', 'ipv6 routing header then tcp'] },
  { expression: 'tcp dst port 443', accepts: ['ipv6 tcp with traffic class AF41'] },
  { expression: 'src port 443', accepts: ['ipv4 tcp with NS, CWR, ECE and ACK flags'] },
  { expression: 'udp port 53 or udp port 547', accepts: ['ipv4 udp with payload', 'ipv6 udp'] },
  { expression: 'port 22 or 179', accepts: [TAGGED[1], 'ipv6 authentication header then tcp'] },
  { expression: 'sctp portrange 36000-37000', accepts: ['ipv4 sctp'] },
  {
    expression: 'portrange 4000-4600',
    accepts: ['802.1Q tagged ipv4 udp', 'ipv6 first fragment keeps its ports'],
  },
  {
    expression: 'dst portrange 1-1024',
    accepts: [
      'ipv4 tcp syn with dscp EF',
      'ipv4 udp with payload',
      'ipv6 tcp with traffic class AF41',
      'ipv6 routing header then tcp',
      TAGGED[1],
      'ipv6 udp',
    ],
  },
  { expression: 'host 192.0.2.1', accepts: V4 },
  { expression: 'src host 198.51.100.2', accepts: [] },
  { expression: 'dst host 198.51.100.2 and icmp', accepts: V4_ICMP },
  { expression: 'host 2001:db8::2', accepts: without(V6, V6_LINK_LOCAL) },
  { expression: 'net 198.51.100.0/24', accepts: V4 },
  { expression: 'src net 192.0.2.0 mask 255.255.255.0 and udp', accepts: [...V4_UDP, TAGGED[0]] },
  { expression: 'net 192.168', accepts: [] },
  { expression: 'ip6 net fe80::/10', accepts: V6_LINK_LOCAL },
  { expression: 'dst net ff02::/16 or icmp', accepts: [...V4_ICMP, ...V6_LINK_LOCAL] },
  { expression: 'src and dst net 2001:db8::/32', accepts: without(V6, V6_LINK_LOCAL) },
  { expression: 'vlan', accepts: TAGGED },
  { expression: 'vlan 100', accepts: [TAGGED[0]] },
  { expression: 'vlan 10 and tcp port 22', accepts: [TAGGED[1]] },
  { expression: 'not vlan and ip6 and udp', accepts: V6_UDP },
  { expression: '!(tcp || udp) && (ip || ip6)', accepts: [...V4_ICMP, ...V4_OTHER, ...V6_ICMP, ...V6_OTHER] },
  { expression: 'tcp or udp and ip6', accepts: [...V6_TCP, ...V6_UDP, TAGGED[2]] },
  { expression: 'not port 80 and tcp', accepts: [V4_TCP[1], TAGGED[1], V6_TCP[0], V6_TCP[2]] },
];

/** One set of FLOW_FILTER_RULES (as the YAML/JSON list) and the vectors it accepts. */
export interface RulesVector {
  /** What the rules exercise. */
  name: string;
  /** The rules as a user writes them. */
  rules: readonly Record<string, unknown>[];
  /** Names of the packet vectors accepted. */
  accepts: readonly string[];
}

/** Rule sets and what they accept. */
export const RULES_VECTORS: readonly RulesVector[] = [
  {
    name: 'one accept rule by CIDR and protocol rejects everything else',
    rules: [{ action: 'Accept', cidr: '192.0.2.0/24', protocol: 'TCP' }],
    accepts: [...V4_TCP, TAGGED[1]],
  },
  {
    name: 'reject rules alone accept whatever they do not match',
    rules: [
      { action: 'Reject', protocol: 'UDP' },
      { action: 'Reject', cidr: '2001:db8::/32' },
    ],
    accepts: [...V4_TCP, ...V4_ICMP, ...V4_OTHER, TAGGED[1], ...V6_LINK_LOCAL, ...NON_IP],
  },
  {
    name: 'the first matching rule decides',
    rules: [
      { action: 'Reject', protocol: 'TCP', destination_port: 80 },
      { action: 'Accept', protocol: 'TCP' },
    ],
    accepts: [V4_TCP[1], TAGGED[1], V6_TCP[0], V6_TCP[2]],
  },
  {
    name: 'ports, port ranges and port lists match either side unless qualified',
    rules: [
      { action: 'Accept', ports: '443,22' },
      { action: 'Accept', source_port_range: '5000-5400' },
      { action: 'Accept', destination_ports: '2906, 9090' },
    ],
    accepts: [
      V4_TCP[1],
      TAGGED[1],
      V6_TCP[0],
      'ipv4 udp with payload',
      'ipv6 sctp',
      'ipv6 destination options (16 bytes) then udp',
    ],
  },
  {
    name: 'icmp type and code',
    rules: [
      { action: 'Accept', protocol: 'ICMP', icmp_type: 3, icmp_code: 3 },
      { action: 'Accept', protocol: 'ICMPv6', icmp_type: 128 },
    ],
    accepts: ['ipv4 icmp port unreachable', 'ipv6 icmpv6 echo request'],
  },
  {
    name: 'tcp flags must all be set',
    rules: [
      { action: 'Accept', tcp_flags: 'SYN' },
      { action: 'Accept', tcp_flags: 'PSH-ACK' },
    ],
    accepts: ['ipv4 tcp syn with dscp EF', 'ipv6 routing header then tcp', TAGGED[1]],
  },
  {
    name: 'peer cidr pairs with cidr on the other side',
    rules: [{ action: 'Accept', cidr: '198.51.100.2/32', peer_cidr: '192.0.2.0/24', protocol: 'UDP' }],
    accepts: [...V4_UDP, TAGGED[0]],
  },
  {
    name: 'a list of CIDRs is one set, with a peer list on the other side',
    rules: [
      {
        action: 'Accept',
        cidr: ['10.0.0.0/8', '198.51.100.0/24'],
        peer_cidr: '192.0.2.1, 203.0.113.0/24',
        protocol: 'ICMP',
      },
      { action: 'Accept', cidr: '2001:db8:ffff::/48,fe80::/10' },
    ],
    accepts: [...V4_ICMP, ...V6_LINK_LOCAL],
  },
  {
    name: 'direction ingress matches every ingress packet and egress none',
    rules: [
      { action: 'Accept', direction: 'Egress' },
      { action: 'Accept', direction: 'Ingress', protocol: 'SCTP' },
    ],
    accepts: ['ipv4 sctp', 'ipv6 sctp'],
  },
];
