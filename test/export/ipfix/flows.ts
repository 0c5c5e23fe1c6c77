/** Flows for the IPFIX tests: both families and directions, 64-bit counters, names, flags. */
import assert from 'node:assert/strict';
import type { RecordBatch } from '../../../src/codec/record-batch.ts';
import { recordBatchOf } from '../../../src/codec/record-batch.ts';
import type { Flow } from '../../../src/model/flow.ts';
import { InterfaceRegistry } from '../../../src/model/interfaces.ts';
import { formatIp, parseIp } from '../../../src/model/ip.ts';
import { formatMac } from '../../../src/model/mac.ts';
import { unixNsToMs } from '../../../src/model/time.ts';
import { makeFlow } from '../../helpers/flows.ts';
import { tsharkTimeMs } from './tshark.ts';

const PROTOCOLS = [6, 17, 1, 58];

/** Flow `i` of a varied set: every third one IPv6, alternating directions and interfaces. */
export function variedFlow(i: number): Flow {
  const ipv6 = i % 3 === 2;
  const start = 1_700_000_000_123_456_789n + BigInt(i) * 1_000_000_000n;
  return makeFlow({
    etype: ipv6 ? 0x86dd : 0x0800,
    direction: i % 2,
    srcMac: `02:00:00:00:01:${(i & 0xff).toString(16).padStart(2, '0')}`,
    dstMac: `0a:bb:cc:dd:ee:${(i & 0xff).toString(16).padStart(2, '0')}`,
    srcAddr: ipv6 ? `fd00::${i + 1}` : `10.${i}.0.1`,
    dstAddr: ipv6 ? `2001:db8::${i}:1` : `192.168.1.${i}`,
    srcPort: 1000 + i,
    dstPort: 60_000 + i,
    proto: PROTOCOLS[i % PROTOCOLS.length],
    ifIndex: i % 4 === 3 ? 9 : 2 + (i % 2),
    bytes: 2 ** 33 + i * 1000,
    packets: i + 1,
    timeFlowStartNs: start,
    timeFlowEndNs: start + BigInt(i) * 1_500_000n,
    tcpFlags: (i * 37) & 0x1ff,
    dscp: i % 64,
    // ICMP flows carry a type and code (destination unreachable, echo); others carry none.
    ...(PROTOCOLS[i % PROTOCOLS.length] === 1 ? { icmpType: 3, icmpCode: i % 16 } : {}),
    ...(PROTOCOLS[i % PROTOCOLS.length] === 58 ? { icmpType: 128 + (i % 2), icmpCode: 0 } : {}),
  });
}

/** Interface names of the varied flows; index 9 has none. */
export function interfaceNames(): InterfaceRegistry {
  const names = new InterfaceRegistry();
  names.set(2, 'eth0');
  names.set(3, 'veth-flowtap1');
  return names;
}

/** `n` varied flows as one batch. */
export function variedBatch(n: number, first = 0): RecordBatch {
  return recordBatchOf(
    Array.from({ length: n }, (_, i) => variedFlow(first + i)),
    interfaceNames(),
  );
}

/** What tshark's cflow dissector should show for `flow` (field name → text), the interface name aside. */
export function expectedCflowFields(flow: Flow): Record<string, string> {
  const ipv6 = flow.etype === 0x86dd;
  const fields: Record<string, string> = {
    [ipv6 ? 'cflow.srcaddrv6' : 'cflow.srcaddr']: formatIp(flow.srcAddr, 0, flow.etype),
    [ipv6 ? 'cflow.dstaddrv6' : 'cflow.dstaddr']: formatIp(flow.dstAddr, 0, flow.etype),
    'cflow.srcport': String(flow.srcPort),
    'cflow.dstport': String(flow.dstPort),
    'cflow.protocol': String(flow.proto),
    'cflow.octets': String(flow.bytes),
    'cflow.packets': String(flow.packets),
    'cflow.direction': String(flow.direction),
    'cflow.srcmac': formatMac(flow.srcMac),
    'cflow.dstmac': formatMac(flow.dstMac),
    'cflow.ethernet_type': String(flow.etype),
    'cflow.tcpflags': `0x${flow.tcpFlags.toString(16).padStart(4, '0')}`,
    'cflow.tos': `0x${(flow.dscp << 2).toString(16).padStart(2, '0')}`,
    [flow.direction === 1 ? 'cflow.outputint' : 'cflow.inputint']: String(flow.ifIndex),
  };
  // tshark shows icmpTypeCodeIPv4 (IE 32) as one hex word, icmpTypeCodeIPv6 (IE 139) as its two bytes.
  if (ipv6) {
    fields['cflow.icmp_ipv6_type'] = String(flow.icmpType);
    fields['cflow.icmp_ipv6_code'] = String(flow.icmpCode);
  } else {
    fields['cflow.icmp_type_code_ipv4'] =
      `0x${(flow.icmpType * 256 + flow.icmpCode).toString(16).padStart(4, '0')}`;
  }
  return fields;
}

/** Asserts that tshark's decoded data records are the varied flows 0..n-1, every field and template. */
export function assertDecodedVariedFlows(
  records: { templateId: number; fields: Record<string, unknown> }[],
  n: number,
): void {
  assert.equal(records.length, n);
  const names = interfaceNames();
  for (let i = 0; i < n; i++) {
    const flow = variedFlow(i);
    const { templateId, fields } = records[i];
    assert.equal(templateId, (flow.etype === 0x86dd ? 258 : 256) + flow.direction, `flow ${i} template`);
    for (const [name, value] of Object.entries(expectedCflowFields(flow))) {
      assert.equal(fields[name], value, `flow ${i} field ${name}`);
    }
    // tshark leaves out an empty variable-length name.
    assert.equal(fields['cflow.if_name'] ?? '', names.nameOf(flow.ifIndex), `flow ${i} interface name`);
    const times = fields['cflow.timedelta_tree'] as Record<string, string>;
    assert.equal(
      tsharkTimeMs(times['cflow.abstimestart']),
      unixNsToMs(flow.timeFlowStartNs),
      `flow ${i} start`,
    );
    assert.equal(tsharkTimeMs(times['cflow.abstimeend']), unixNsToMs(flow.timeFlowEndNs), `flow ${i} end`);
  }
}

/**
 * Flow `i` as IPFIX carries it: times in whole milliseconds, and every field flowtap's templates
 * have in use somewhere in a set (agent addresses of both families, bidirectional records,
 * VLANs, VXLAN VNIs without the outer addresses IPFIX has no element for, TCP health, DNS with a
 * name of non-ASCII bytes). Any `i` below 64 000.
 */
export function ipfixFlow(i: number): Flow {
  // The varied flows' addresses hold i < 256; the port tells the rest apart.
  const flow = variedFlow(i % 250);
  flow.srcPort = (1000 + i) % 65_536;
  const ms = (ns: bigint) => (ns / 1_000_000n) * 1_000_000n;
  flow.timeFlowStartNs = ms(flow.timeFlowStartNs);
  flow.timeFlowEndNs = ms(flow.timeFlowEndNs);
  if (i % 5 === 1) flow.agentIp = parseIp('192.0.2.9');
  if (i % 5 === 2) flow.agentIp = parseIp('2001:db8::9');
  if (i % 7 === 3) {
    flow.vlanOuter = 100 + (i % 50);
    flow.vlanInner = i % 3;
  }
  if (i % 11 === 4) {
    flow.tunnel = { type: 1, id: 5000 + i, srcAddr: new Uint8Array(16), dstAddr: new Uint8Array(16) };
  }
  if (i % 6 === 5) {
    flow.health = {
      dropBytes: i % 2 === 0 ? 0 : 1500,
      dropPackets: i % 2 === 0 ? 0 : 1,
      retransBytes: 2800,
      retransPackets: 2,
      ...(i % 4 === 1 ? { rtt: { minNs: 90_000n, maxNs: 400_000n, lastNs: 120_000n, samples: 7 } } : {}),
      ...(i % 3 === 2 ? { handshakeRttNs: 250_000n } : {}),
      // The drop's time is not exported (no IPFIX element): 0 here, so the flows compare whole.
      ...(i % 2 === 0 ? {} : { latestDrop: { timeNs: 0n, cause: 5, tcpFlags: 0x10, tcpState: 1 } }),
    };
  }
  if (i % 8 === 6) {
    flow.dns = {
      queries: 1,
      answers: i % 16 === 6 ? 1 : 0,
      unanswered: i % 16 === 6 ? 0 : 1,
      malformed: 0,
      latestNs: 0n,
      header: { id: 0x1234 + i, flags: 0x8180 },
      name: i % 3 === 0 ? 'caf\u00e9.example' : 'www.example.com',
      ...(i % 16 === 6 ? { latencyNs: 3_000_000n } : {}),
    };
  }
  if (i % 4 === 1) {
    flow.reverse = {
      bytes: i * 7,
      packets: i % 3,
      timeFlowStartNs: flow.timeFlowStartNs + 1_000_000n,
      timeFlowEndNs: flow.timeFlowEndNs + 2_000_000n,
      tcpFlags: i % 3 === 0 ? 0 : 0x12,
      dscp: i % 64,
    };
  }
  return flow;
}

/** `n` flows of {@link ipfixFlow} as one batch with the varied flows' interface names. */
export function ipfixBatch(n: number, first = 0): RecordBatch {
  return recordBatchOf(
    Array.from({ length: n }, (_, i) => ipfixFlow(first + i)),
    interfaceNames(),
  );
}
