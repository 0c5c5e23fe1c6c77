/**
 * `flowtap collect --from ipfix` as a process against real exporters: flowtap's own IPFIX
 * exporters over UDP and TCP (what comes out as JSON is exactly what went in), softflowd replaying
 * a capture over UDP (system-uptime times from its options record) and TCP (absolute
 * milliseconds, bidirectional records), and hostile datagrams, counted by reason in /metrics while
 * the collector goes on.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { test } from 'node:test';
import { runningKernelDropReasons } from '../../src/ebpf/drop-reasons.ts';
import { IpfixTcpExporter } from '../../src/export/ipfix/tcp.ts';
import { IpfixUdpExporter } from '../../src/export/ipfix/udp.ts';
import { batchToJsonLines } from '../../src/export/json-lines.ts';
import { ipfixBatch } from '../export/ipfix/flows.ts';
import { be, ipv4, message, set, templateRecord, templateSet } from '../export/ipfix/messages.ts';
import { type CollectorProcess, startCollectorProcess } from './collector-process.ts';
import { runSoftflowd, type SoftflowdFlow, softflowdAvailable, softflowdCapture } from './softflowd.ts';

const WAIT_TIMEOUT_MS = 30_000;
const POLL_MS = 20;

/** A collector on free UDP and TCP ports, JSON on stdout, metrics served. */
async function startIpfixCollector(t: { after: (fn: () => unknown) => void }, from = 'ipfix') {
  const collector = startCollectorProcess(t, ['--from', from, '--ipfix-port', '0', '--metrics-port', '0']);
  const portOf = async (transport: string) =>
    (await collector.waitForLog((l) => l.transport === transport, `IPFIX over ${transport}`)).port as number;
  const udpPort = from === 'ipfix+tcp' ? 0 : await portOf('udp');
  const tcpPort = from === 'ipfix+udp' ? 0 : await portOf('tcp');
  const metricsPort = (await collector.waitForLog((l) => /metrics on/.test(String(l.msg)), 'metrics on'))
    .port as number;
  return { collector, udpPort, tcpPort, metricsPort };
}

function lines(collector: CollectorProcess): string[] {
  return collector.stdout().split('\n').filter(Boolean);
}

async function waitForLines(collector: CollectorProcess, count: number): Promise<string[]> {
  const deadline = Date.now() + WAIT_TIMEOUT_MS;
  while (lines(collector).length < count) {
    if (Date.now() > deadline)
      throw new Error(`collector printed ${lines(collector).length} of ${count} flows`);
    if (collector.child.exitCode !== null) throw new Error('collector exited');
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  return lines(collector);
}

async function metricsText(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

function metricValue(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

test("flowtap's own IPFIX exporters, over UDP and TCP: collect prints exactly the flows exported (health and DNS included)", async (t) => {
  const { collector, udpPort, tcpPort, metricsPort } = await startIpfixCollector(t);
  const overUdp = ipfixBatch(300);
  const overTcp = ipfixBatch(300, 300);
  const udp = new IpfixUdpExporter({ host: '127.0.0.1', port: udpPort });
  udp.export(overUdp);
  await udp.stop();
  await waitForLines(collector, overUdp.count);
  const tcp = new IpfixTcpExporter({ host: '127.0.0.1', port: tcpPort });
  tcp.export(overTcp);
  await tcp.stop();
  const printed = await waitForLines(collector, overUdp.count + overTcp.count);
  // The collector names drop reasons as this kernel does.
  const reasons = runningKernelDropReasons();
  const expected = (b: typeof overUdp) => batchToJsonLines(b, 0, b.count, reasons);
  assert.equal(`${printed.join('\n')}\n`, expected(overUdp) + expected(overTcp));
  const metrics = await metricsText(metricsPort);
  assert.equal(metricValue(metrics, 'flowtap_collect_flows_received_total', 'source="ipfix+udp"'), 300);
  assert.equal(metricValue(metrics, 'flowtap_collect_flows_received_total', 'source="ipfix+tcp"'), 300);
  assert.equal(metricValue(metrics, 'flowtap_collect_ipfix_missing_records_total', 'source="ipfix+udp"'), 0);
  assert.doesNotMatch(metrics, /flowtap_collect_source_dropped_total\{/);
  collector.child.kill('SIGTERM');
  assert.equal(await collector.exited(), 0);
});

/** The fields of a printed flow a softflowd record determines. */
function softflowdView(line: string) {
  const f = JSON.parse(line);
  return {
    etype: f.Etype,
    src: f.Network.SrcAddr,
    dst: f.Network.DstAddr,
    srcPort: f.Transport.SrcPort,
    dstPort: f.Transport.DstPort,
    proto: f.Transport.Proto,
    packets: f.Packets,
    bytes: f.Bytes,
    startMs: Date.parse(f.TimeFlowStart),
    endMs: Date.parse(f.TimeFlowEnd),
    tcpFlags: f.TcpFlags ?? 0,
    dscp: f.Dscp ?? 0,
    icmp: f.IcmpType === undefined ? undefined : [f.IcmpType, f.IcmpCode],
    agentIp: f.AgentIP,
  };
}

function expectedView(flow: SoftflowdFlow) {
  const protoName: Record<number, string> = { 1: 'ICMP', 6: 'TCP', 17: 'UDP' };
  return {
    etype: flow.etype,
    src: flow.src,
    dst: flow.dst,
    srcPort: flow.srcPort,
    dstPort: flow.dstPort,
    proto: protoName[flow.proto],
    packets: flow.packets,
    bytes: flow.ipBytes,
    startMs: flow.firstMs,
    endMs: flow.lastMs,
    tcpFlags: flow.tcpFlags,
    dscp: flow.dscp,
    icmp: flow.proto === 1 ? [flow.icmpType, flow.icmpCode] : undefined,
    // softflowd sends no exporter address: the datagrams' source stands for the agent.
    agentIp: '127.0.0.1',
  };
}

const bySource = (a: { src: string; srcPort: number }, b: { src: string; srcPort: number }) =>
  a.src.localeCompare(b.src) || a.srcPort - b.srcPort;

for (const [transport, args] of [
  ['udp', ['-a']],
  ['tcp', ['-P', 'tcp', '-A', 'milli']],
] as const) {
  test(`softflowd -v 10 over ${transport.toUpperCase()} (${args.join(' ')}): collect prints the flows softflowd saw`, {
    skip: !softflowdAvailable() && 'softflowd is not installed',
  }, async (t) => {
    const { collector, udpPort, tcpPort, metricsPort } = await startIpfixCollector(t, `ipfix+${transport}`);
    const { flows, pcap } = softflowdCapture();
    const packets = flows.reduce((n, f) => n + f.packets, 0);
    const port = transport === 'udp' ? udpPort : tcpPort;
    await runSoftflowd(t, pcap, packets, `127.0.0.1:${port}`, args);
    const printed = await waitForLines(collector, flows.length);
    assert.deepEqual(printed.map(softflowdView).sort(bySource), flows.map(expectedView).sort(bySource));
    const metrics = await metricsText(metricsPort);
    assert.doesNotMatch(metrics, /flowtap_collect_source_dropped_total\{/);
    assert.equal(
      metricValue(metrics, 'flowtap_collect_ipfix_missing_records_total', `source="ipfix+${transport}"`),
      0,
      'softflowd numbers its records as RFC 7011 says',
    );
    collector.child.kill('SIGTERM');
    assert.equal(await collector.exited(), 0);
  });
}

test('softflowd -b: bidirectional records carry each direction, the reverse one in the RFC 5103 elements', {
  skip: !softflowdAvailable() && 'softflowd is not installed',
}, async (t) => {
  const { collector, udpPort } = await startIpfixCollector(t, 'ipfix+udp');
  const { flows, pcap } = softflowdCapture();
  const packets = flows.reduce((n, f) => n + f.packets, 0);
  await runSoftflowd(t, pcap, packets, `127.0.0.1:${udpPort}`, ['-b', '-A', 'milli']);
  const printed = (await waitForLines(collector, flows.length)).map((l) => JSON.parse(l));
  // softflowd orders a record's endpoints itself: a one-way flow lands on either side.
  for (const flow of flows) {
    const ends = [flow.src, flow.dst].sort().join(' ');
    const record = printed.find(
      (f) =>
        [f.Network.SrcAddr, f.Network.DstAddr].sort().join(' ') === ends &&
        f.Transport.Proto === expectedView(flow).proto,
    );
    assert.ok(record, `a record of ${ends}`);
    assert.deepEqual(
      [record.Packets + record.RevPackets, record.Bytes + record.RevBytes],
      [flow.packets, flow.ipBytes],
      ends,
    );
  }
  assert.ok(printed.some((f) => f.RevPackets > 0) && printed.some((f) => f.Packets > 0));
  collector.child.kill('SIGTERM');
  assert.equal(await collector.exited(), 0);
});

test('hostile datagrams are counted by reason in /metrics, and the collector goes on decoding', async (t) => {
  const { collector, udpPort, metricsPort } = await startIpfixCollector(t, 'ipfix+udp');
  const fields = [
    [8, 4],
    [12, 4],
    [1, 4],
    [2, 4],
  ] as const;
  const template = templateSet(templateRecord(300, fields));
  const record = Buffer.concat([ipv4('10.9.0.1'), ipv4('10.9.0.2'), be(500, 4), be(5, 4)]);
  const hostile: [string, Buffer][] = [
    ['short_message', Buffer.from('000a', 'hex')],
    ['not_ipfix', Buffer.concat([be(5, 2), message([template]).subarray(2)])],
    ['truncated_message', message([template], { length: 900 })],
    ['bad_set_length', message([Buffer.from('01000000', 'hex')])],
    ['bad_template', message([set(2, templateRecord(301, fields).subarray(0, 9))])],
    ['data_before_template', message([set(302, record)])],
  ];
  const socket = createSocket('udp4');
  t.after(() => socket.close());
  const send = (datagram: Buffer) =>
    new Promise<void>((resolve, reject) =>
      socket.send(datagram, udpPort, '127.0.0.1', (err) => (err ? reject(err) : resolve())),
    );
  for (const [, datagram] of hostile) await send(datagram);
  await send(message([template, set(300, record)]));
  const [line] = await waitForLines(collector, 1);
  assert.equal(JSON.parse(line).Bytes, 500);
  const metrics = await metricsText(metricsPort);
  for (const [reason] of hostile) {
    assert.equal(
      metricValue(metrics, 'flowtap_collect_source_dropped_total', `source="ipfix+udp",reason="${reason}"`),
      1,
      reason,
    );
  }
  collector.child.kill('SIGTERM');
  assert.equal(await collector.exited(), 0);
});
