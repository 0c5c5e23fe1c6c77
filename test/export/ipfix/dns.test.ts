/**
 * flowtap's DNS elements over IPFIX: a flow with DNS gets a template of its own with the elements
 * under flowtap's enterprise number, each value where the template says, and tshark's dissector
 * walks the record to its end (every length consistent).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type RecordBatch, recordBatchOf } from '../../../src/codec/record-batch.ts';
import { IpfixDecoder } from '../../../src/export/ipfix/decode.ts';
import { IpfixEncoder } from '../../../src/export/ipfix/encoder.ts';
import { ExporterSession } from '../../../src/export/ipfix/exporter-session.ts';
import {
  FLOWTAP_IE,
  FLOWTAP_PEN,
  TEMPLATE_ID_BASE,
  TEMPLATES,
  TemplateShape,
} from '../../../src/export/ipfix/templates.ts';
import { batchToJsonLines } from '../../../src/export/json-lines.ts';
import type { FlowDns } from '../../../src/model/flow.ts';
import { parseIp } from '../../../src/model/ip.ts';
import { classicPcap } from '../../capture/pcap/capture-files.ts';
import { makeFlow } from '../../helpers/flows.ts';
import { dataRecords, decodeIpfix } from './tshark.ts';

const DNS: FlowDns = {
  queries: 2,
  answers: 1,
  unanswered: 1,
  malformed: 3,
  latestNs: 1n,
  header: { id: 0x1234, flags: 0x8183 },
  name: 'nx.ex\u00e4mple',
  latencyNs: 12_345_678n,
  errno: 2,
};
const MESSAGE_HEADER = 16;
const SET_HEADER = 4;

test('a flow with DNS goes in the DNS template, its elements in template order after the ICMP field', () => {
  const template = TEMPLATES[TemplateShape.EGRESS | TemplateShape.DNS];
  assert.deepEqual(
    template.fields.slice(-10).map(([ie, , pen]) => [ie, pen]),
    Object.entries(FLOWTAP_IE)
      .filter(([name]) => name.startsWith('dns'))
      .map(([, ie]) => [ie, FLOWTAP_PEN]),
  );
  const encoder = new IpfixEncoder();
  const { bytes } = encoder.encodeBatch(recordBatchOf([makeFlow({ proto: 17, dns: DNS }), makeFlow()]), 0);
  assert.equal(
    bytes.readUInt16BE(MESSAGE_HEADER),
    TEMPLATE_ID_BASE + TemplateShape.EGRESS + TemplateShape.DNS,
  );
  // The DNS elements follow the fixed fields, the interface name (empty: 1 byte) and the ICMP field.
  let p = MESSAGE_HEADER + SET_HEADER + template.nameOffset + 1 + 2;
  assert.deepEqual(
    [bytes.readUInt16BE(p), bytes.readUInt16BE(p + 2), bytes.readBigUInt64BE(p + 4), bytes[p + 12]],
    [0x1234, 0x8183, 12_345_678n, 2],
  );
  assert.deepEqual(
    [
      bytes.readUInt32BE(p + 13),
      bytes.readUInt32BE(p + 17),
      bytes.readUInt32BE(p + 21),
      bytes.readUInt32BE(p + 25),
    ],
    [2, 1, 1, 3],
  );
  assert.equal(bytes[p + 29], 1 | 2 | 8, 'header, name and latency present');
  p += 30;
  assert.equal(bytes.toString('utf8', p + 1, p + 1 + bytes[p]), 'nx.ex\u00e4mple');
  // The flow without DNS follows in a set of the plain template.
  const next = p + 1 + bytes[p];
  assert.equal(bytes.readUInt16BE(next), TEMPLATE_ID_BASE + TemplateShape.EGRESS);
});

test('tshark decodes the DNS template and walks its records to their end', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-ipfix-dns-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const encoder = new IpfixEncoder();
  const batch = recordBatchOf([
    makeFlow({ proto: 17, dns: DNS }),
    makeFlow({ srcPort: 7, dns: { ...DNS, name: 'ok.example' } }),
  ]);
  const messages = [...encoder.templateMessages(0), encoder.encodeBatch(batch, 0).bytes];
  const frames = messages.map((message) => {
    const udp = Buffer.alloc(8);
    udp.writeUInt16BE(40_000, 0);
    udp.writeUInt16BE(4739, 2);
    udp.writeUInt16BE(8 + message.length, 4);
    const ip = Buffer.from('4500000000000000401100007f0000017f000001', 'hex');
    ip.writeUInt16BE(28 + message.length, 2);
    const eth = Buffer.from('000000000000000000000000' + '0800', 'hex');
    return { frame: Buffer.concat([eth, ip, udp, message]), seconds: 1, fraction: 0 };
  });
  const file = join(dir, 'ipfix.pcap');
  writeFileSync(file, classicPcap(frames));
  return decodeIpfix(file, 'udp.port==4739,cflow', { mergeDuplicateKeys: true }).then((decoded) => {
    const records = dataRecords(decoded);
    assert.deepEqual(
      records.map((r) => r.templateId),
      [
        TEMPLATE_ID_BASE + TemplateShape.EGRESS + TemplateShape.DNS,
        TEMPLATE_ID_BASE + TemplateShape.EGRESS + TemplateShape.DNS,
      ],
    );
    // The fields after the DNS ones decode in place: the ICMP field before and the name last.
    const entries = records[1].fields['cflow.enterprise_private_entry'] as string[];
    assert.equal(entries.length, 10, 'ten enterprise elements');
    assert.equal(Buffer.from(entries[9].replaceAll(':', ''), 'hex').toString(), 'ok.example');
  });
});

test("flowtap collect reads a DNS template's records back with their DNS", () => {
  const encoder = new IpfixEncoder();
  const exported = [
    makeFlow({ proto: 17, dns: DNS }),
    makeFlow({ srcPort: 7, dns: { ...DNS, name: 'ok.example' } }),
    makeFlow({ srcPort: 8 }),
  ];
  const messages = [...encoder.templateMessages(0), encoder.encodeBatch(recordBatchOf(exported), 0).bytes];
  const batches: RecordBatch[] = [];
  const drops: string[] = [];
  const decoder = new IpfixDecoder({ drop: (reason) => drops.push(reason), onBatch: (b) => batches.push(b) });
  const session = new ExporterSession('192.0.2.1:4739', parseIp('192.0.2.1') as Uint8Array);
  for (const m of messages) decoder.decode(session, m, 0, m.length);
  decoder.flush();
  assert.deepEqual(drops, []);
  // Everything the JSON shows comes back (the latest message's time has no element and is not shown).
  assert.equal(batches.map((b) => batchToJsonLines(b)).join(''), batchToJsonLines(recordBatchOf(exported)));
});
