/**
 * Bidirectional records and the agent address over IPFIX, read by the real decoders: tshark's
 * cflow dissector (RFC 5103 reverse elements under PEN 29305, exporterIPv4/IPv6Address) and
 * nfdump (nfcapd collecting, nfdump printing the reverse counters as its "out" counters).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { recordBatchOf } from '../../../src/codec/record-batch.ts';
import { IpfixUdpExporter } from '../../../src/export/ipfix/udp.ts';
import type { Flow } from '../../../src/model/flow.ts';
import { parseIp } from '../../../src/model/ip.ts';
import { makeFlow } from '../../helpers/flows.ts';
import { captureLoopback, dataRecords, decodeIpfix, subtrees, tsharkTimeMs } from './tshark.ts';

const T0_MS = 1_700_000_000_000;
const MS = 1_000_000n;

/** A conversation of 3 packets one way and 4 back, seen by agent 192.0.2.9, plus a one-way IPv6 flow of an IPv6 agent. */
function biflows(): Flow[] {
  return [
    makeFlow({
      bytes: 300,
      packets: 3,
      tcpFlags: 0x02,
      dscp: 10,
      timeFlowStartNs: BigInt(T0_MS) * MS,
      timeFlowEndNs: BigInt(T0_MS + 50) * MS,
      agentIp: parseIp('192.0.2.9')!,
      vlanOuter: 100,
      vlanInner: 7,
      tunnel: { type: 1, id: 42, srcAddr: parseIp('198.51.100.1')!, dstAddr: parseIp('198.51.100.2')! },
      reverse: {
        bytes: 5000,
        packets: 4,
        timeFlowStartNs: BigInt(T0_MS + 10) * MS,
        timeFlowEndNs: BigInt(T0_MS + 60) * MS,
        tcpFlags: 0x12,
        dscp: 20,
      },
    }),
    makeFlow({
      etype: 0x86dd,
      srcAddr: 'fd00::1',
      dstAddr: 'fd00::2',
      agentIp: parseIp('2001:db8::9')!,
      reverse: { bytes: 0, packets: 0, timeFlowStartNs: 0n, timeFlowEndNs: 0n, tcpFlags: 0, dscp: 0 },
    }),
  ];
}

test('tshark decodes the RFC 5103 reverse elements and the exporter address of each record', async (t) => {
  const collector = createSocket('udp4');
  collector.bind(0, '127.0.0.1');
  await once(collector, 'listening');
  t.after(() => collector.close());
  const port = collector.address().port;
  const capture = await captureLoopback((release) => t.after(release as () => void), `udp dst port ${port}`);
  const exporter = new IpfixUdpExporter({ host: '127.0.0.1', port });
  exporter.export(recordBatchOf(biflows()));
  await exporter.stop();
  const messages = await decodeIpfix(await capture.stop(), `udp.port==${port},cflow`, {
    mergeDuplicateKeys: true,
  });

  const templates = messages
    .flatMap((m) => subtrees(m, 'Set ').filter((set) => Number(set['cflow.flowset_id']) === 2))
    .flatMap((set) => subtrees(set, 'Template ('));
  const biflowTemplate = templates.find((tpl) => Number(tpl['cflow.template_id']) === 256 + 8 + 1);
  const reverseFields = subtrees(biflowTemplate ?? {}, 'Field (').filter(
    (f) => f['cflow.template_ipfix_pen_provided'] === '1',
  );
  assert.deepEqual(
    reverseFields.map((f) => [
      Number(f['cflow.template_ipfix_field_type']),
      Number(f['cflow.template_ipfix_field_pen']),
    ]),
    [1, 2, 152, 153, 6, 5].map((ie) => [ie, 29305]),
  );

  const [v4, v6] = dataRecords(messages);
  assert.equal(v4.templateId, 256 + 8 + 1, 'egress, IPv4, IPv4 agent, bidirectional');
  // Reverse elements come first in the record, then the forward ones.
  assert.deepEqual(v4.fields['cflow.octets'], ['5000', '300']);
  assert.deepEqual(v4.fields['cflow.packets'], ['4', '3']);
  assert.deepEqual(v4.fields['cflow.tcpflags'], ['0x0012', '0x0002']);
  assert.deepEqual(v4.fields['cflow.tos'], ['0x50', '0x28']);
  const times = v4.fields['cflow.timedelta_tree'] as Record<string, string[]>[];
  assert.deepEqual(
    times.map((tree) => [
      tsharkTimeMs(String(tree['cflow.abstimestart'])),
      tsharkTimeMs(String(tree['cflow.abstimeend'])),
    ]),
    [
      [T0_MS + 10, T0_MS + 60],
      [T0_MS, T0_MS + 50],
    ],
  );
  assert.equal(v4.fields['cflow.exporter_addr'], '192.0.2.9');
  assert.deepEqual(
    [v4.fields['cflow.vlanid'], v4.fields['cflow.dot1q_vlan_id'], v4.fields['cflow.dot1q_customer_vlan_id']],
    ['100', '100', '7'],
  );
  assert.equal(BigInt(String(v4.fields['cflow.layer2_segment_id'])), (1n << 56n) | 42n, 'VXLAN code and VNI');

  assert.equal(v6.templateId, 256 + 8 + 4 + 2 + 1, 'egress, IPv6, IPv6 agent, bidirectional');
  assert.equal(v6.fields['cflow.exporter_addr_v6'], '2001:db8::9');
  assert.deepEqual(v6.fields['cflow.octets'], ['0', '100']);
});

test('nfdump reads the forward counters as its in counters and the reverse ones as its out counters', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-nfcapd-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // nfcapd binds its own port: find a free one, then hand it over.
  const probe = createSocket('udp4');
  probe.bind(0, '127.0.0.1');
  await once(probe, 'listening');
  const port = probe.address().port;
  probe.close();
  // -E prints each record as it is processed (line-buffered by stdbuf): the test waits for them.
  const nfcapd: ChildProcess = spawn(
    'stdbuf',
    ['-oL', '-eL', 'nfcapd', '-E', '-b', '127.0.0.1', '-p', String(port), '-w', dir],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const exited = once(nfcapd, 'exit');
  t.after(() => {
    if (nfcapd.exitCode === null && nfcapd.signalCode === null) nfcapd.kill('SIGKILL');
  });
  let log = '';
  const logged = (pattern: RegExp) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (pattern.test(log)) resolve();
      };
      nfcapd.stdout?.on('data', check);
      nfcapd.stderr?.on('data', check);
      exited.then(() => reject(new Error(`nfcapd exited: ${log}`)));
      check();
    });
  const collect = (d: Buffer) => {
    log += d.toString();
  };
  nfcapd.stdout?.on('data', collect);
  nfcapd.stderr?.on('data', collect);
  await logged(/Startup nfcapd/);
  const exporter = new IpfixUdpExporter({ host: '127.0.0.1', port });
  exporter.export(recordBatchOf(biflows()));
  await exporter.stop();
  // nfcapd writes its file when it stops: stop it once it has printed both records.
  await logged(/Flow Record:[\s\S]*Flow Record:/);
  nfcapd.kill('SIGTERM');
  await exited;
  assert.match(log, /Flows: 2, Packets: 8, Bytes: 5400/, log);
  const file = readdirSync(dir).find((f) => f.startsWith('nfcapd.') && !f.includes('current'));
  assert.ok(file, `nfcapd wrote no file: ${readdirSync(dir).join(', ')}`);
  const records = JSON.parse(
    execFileSync('nfdump', ['-r', join(dir, file), '-o', 'json']).toString(),
  ) as Record<string, unknown>[];
  const v4 = records.find((r) => r.src4_addr === '10.0.0.1');
  assert.deepEqual(
    [v4?.in_bytes, v4?.in_packets, v4?.out_bytes, v4?.out_packets, v4?.first, v4?.src_vlan],
    [300, 3, 5000, 4, '2023-11-14T22:13:20.000', 100],
  );
});
