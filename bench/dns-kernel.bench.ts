/**
 * DNS tracking in the TC programs (bpf/dns.h): the programs' own time per packet with
 * ENABLE_DNS_TRACKING off (the baseline) and on, through BPF_PROG_TEST_RUN (the best of ROUNDS
 * means over REPEAT runs of one frame, the two sides' rounds alternating). One line per case with
 * its ratio to the same frame with tracking off.
 *
 * - Packets that are not DNS (a UDP datagram, a TCP ACK of a known flow): target, within noise
 *   of off (the tracker costs a protocol compare and two port-bitmap bits).
 * - A DNS flood: one UDP query repeated (the first waits in the pending map, the rest find it
 *   there: a retransmission), one response repeated (the first answers it, the rest find no
 *   query: ENOENT), a query with a 64-byte name, a datagram on port 53 that is no DNS message
 *   (malformed), and a query over TCP repeated (after the first, a continuation of its stream);
 *   reported, no target.
 *
 * Needs root; the machine is shared, so figures are noisy: compare ratios within one run.
 */
import { FlowObject } from '../src/ebpf/object.ts';
import { DNS_SECTION, SectionMaps } from '../src/ebpf/section-maps.ts';
import { missingCapabilities } from '../test/helpers/privileges.ts';
import { DNS_VECTORS, dnsFrame, dnsVectorFrame, TCP_SYN } from '../test/vectors/dns.ts';
import { ALL_PACKET_VECTORS } from '../test/vectors/packets.ts';

const REPEAT = 200_000;
const ROUNDS = 7;
const WARMUP = 1000;

function packetFrame(name: string): Buffer {
  const vector = ALL_PACKET_VECTORS.find((v) => v.name === name);
  if (!vector) throw new Error(`no packet vector ${name}`);
  return Buffer.from(vector.frame, 'hex');
}

function dnsMessageFrame(name: string): Buffer {
  const vector = DNS_VECTORS.find((v) => v.name === name);
  if (!vector) throw new Error(`no DNS vector ${name}`);
  return dnsVectorFrame(vector);
}

/** A datapath loaded with DNS tracking on or off, and what releases it. */
function load(dns: boolean): { obj: FlowObject; close: () => void } {
  const maps = dns ? SectionMaps.create(DNS_SECTION, 1024) : undefined;
  const obj = FlowObject.load({
    sampling: 1,
    maxFlows: 1024,
    ringBufferBytes: 1 << 16,
    mapKind: 'percpu',
    dns: maps && { ports: [53], mapFd: maps.outerFd },
  });
  return {
    obj,
    close: () => {
      obj.close();
      maps?.close();
    },
  };
}

/**
 * Kernel ns per run of `frame` through the ingress program with DNS tracking off and on: rounds
 * alternate between the two, and each side's best round counts (other load on the machine only
 * adds time, so the best is the least disturbed).
 */
function testRunNs(frame: Buffer, before: Buffer[]): { off: number; on: number } {
  const off = load(false);
  const on = load(true);
  try {
    for (const { obj } of [off, on]) {
      for (const f of before) obj.testRun('ingress', f);
      obj.testRunNsPerPacket('ingress', frame, WARMUP);
    }
    let bestOff = Number.POSITIVE_INFINITY;
    let bestOn = Number.POSITIVE_INFINITY;
    for (let i = 0; i < ROUNDS; i++) {
      bestOff = Math.min(bestOff, off.obj.testRunNsPerPacket('ingress', frame, REPEAT));
      bestOn = Math.min(bestOn, on.obj.testRunNsPerPacket('ingress', frame, REPEAT));
    }
    return { off: bestOff, on: bestOn };
  } finally {
    off.close();
    on.close();
  }
}

function main(): void {
  if (missingCapabilities(['CAP_NET_ADMIN', 'CAP_SYS_ADMIN']).length > 0) {
    console.log('dns-kernel.bench: skipped (needs root)');
    return;
  }
  console.log(
    `TC pair, kernel time per packet, DNS tracking off (baseline) vs on (BPF_PROG_TEST_RUN, best of ${ROUNDS} alternating rounds x ${REPEAT}):`,
  );
  const tcpSyn = dnsFrame({ from: 'client', transport: 'tcp', payload: '', tcpFlags: TCP_SYN, seq: 0 });
  const cases: Array<[string, Buffer, Buffer[]]> = [
    ['udp, not DNS', packetFrame('ipv6 udp'), []],
    ['tcp ACK, not DNS', packetFrame('ipv4 tcp with NS, CWR, ECE and ACK flags'), []],
    ['dns query (retransmitted)', dnsMessageFrame('query A www.example.com'), []],
    [
      'dns response (no query)',
      dnsMessageFrame('response NOERROR with an answer whose name is a pointer'),
      [],
    ],
    ['dns query, 64-byte name', dnsMessageFrame('name of 64 bytes is kept whole'), []],
    ['udp on port 53, not DNS', packetFrame('ipv4 udp with payload'), []],
    ['dns query over TCP, repeated', dnsMessageFrame('query over TCP with its length prefix'), [tcpSyn]],
  ];
  for (const [name, frame, before] of cases) {
    const { off, on } = testRunNs(frame, before);
    console.log(
      `${name.padEnd(28)} off ${String(off).padStart(4)} ns/packet, on ${String(on).padStart(4)} ns/packet  ${(on / off).toFixed(2)}x baseline`,
    );
  }
}

main();
