/**
 * Filter cost in the kernel: the TC program's own time per packet (BPF_PROG_TEST_RUN, the
 * kernel's mean over REPEAT runs of one frame) unfiltered, and with a 10-rule FLOW_FILTER_RULES
 * filter and a pcap-filter expression, for traffic the filter accepts (after testing every rule)
 * and traffic it rejects. One line per case with the ratio to the unfiltered count. Target:
 * rejected traffic costs less than an unfiltered count. Needs root and a kernel with eBPF.
 */
import { FlowObject } from '../src/ebpf/object.ts';
import { buildFilter } from '../src/filter/build.ts';
import type { FilterProgram } from '../src/filter/program.ts';
import { ethernet, ipv4, ports } from '../test/filter/mixed-traffic.ts';

const REPEAT = 2_000_000;
const ROUNDS = 5;

/** Ten rules of the kinds users write; a packet from 198.51.100.0/24 to UDP port 9 matches only the last. */
const TEN_RULES = [
  { action: 'Accept', cidr: '10.1.0.0/16', protocol: 'TCP', destination_port: 443 },
  { action: 'Accept', cidr: '10.2.0.0/16', protocol: 'UDP', destination_port: 53 },
  { action: 'Reject', cidr: '10.3.0.0/16' },
  { action: 'Accept', protocol: 'SCTP' },
  { action: 'Accept', cidr: '192.168.0.0/16', ports: '80,443' },
  { action: 'Accept', protocol: 'ICMP', icmp_type: 8 },
  { action: 'Accept', protocol: 'TCP', tcp_flags: 'SYN' },
  { action: 'Accept', cidr: '172.16.0.0/12', port_range: '1000-2000' },
  { action: 'Accept', cidr: '2001:db8::/32' },
  { action: 'Accept', cidr: '198.51.100.0/24', protocol: 'UDP', destination_port: 9 },
];

function udpFrame(src: string): Buffer {
  return ethernet(0x0800, ipv4(src, '192.0.2.1', 17, ports(4000, 9, 26)));
}

const accepted = udpFrame('198.51.100.7');
const rejected = udpFrame('203.0.113.7');

function measure(obj: FlowObject, filter: FilterProgram | undefined, frame: Buffer): number {
  obj.filter.install(filter);
  obj.testRunNsPerPacket('ingress', frame, 1000); // the flow exists from here on: every run is an update
  const runs: number[] = [];
  for (let i = 0; i < ROUNDS; i++) runs.push(obj.testRunNsPerPacket('ingress', frame, REPEAT));
  runs.sort((a, b) => a - b);
  return runs[Math.floor(ROUNDS / 2)];
}

const obj = FlowObject.load({ sampling: 1, maxFlows: 1024, ringBufferBytes: 1 << 16, mapKind: 'percpu' });
try {
  const rules = buildFilter({ rules: TEN_RULES });
  const expression = buildFilter({ expression: 'tcp port 5201 or udp port 53 or net 198.51.100.0/24' });
  const baseline = measure(obj, undefined, accepted);
  const line = (name: string, ns: number) =>
    console.log(
      `${name.padEnd(48)} ${String(ns).padStart(5)} ns/packet  ${(ns / baseline).toFixed(2)}x unfiltered`,
    );
  line('unfiltered (every packet counted)', baseline);
  line(`10 rules (${rules?.insnCount} tests), accepted by the last rule`, measure(obj, rules, accepted));
  line(`10 rules (${rules?.insnCount} tests), rejected by all`, measure(obj, rules, rejected));
  line('expression (3 alternatives), accepted', measure(obj, expression, accepted));
  line('expression (3 alternatives), rejected', measure(obj, expression, rejected));
} finally {
  obj.close();
}
