/**
 * TCP health (issue 14) over IPFIX: the HEALTH templates and their fields byte by byte, and
 * tshark's cflow dissector reading the IANA drop counters and flowtap's enterprise elements.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { test } from 'node:test';
import { recordBatchOf } from '../../../src/codec/record-batch.ts';
import { IpfixEncoder } from '../../../src/export/ipfix/encoder.ts';
import {
  FLOWTAP_IE,
  FLOWTAP_PEN,
  HEALTH_BYTES,
  IE,
  TEMPLATE_ID_BASE,
  TEMPLATES,
  TemplateShape,
} from '../../../src/export/ipfix/templates.ts';
import { IpfixUdpExporter } from '../../../src/export/ipfix/udp.ts';
import { makeFlow } from '../../helpers/flows.ts';
import { FULL_HEALTH, RETRANS_ONLY } from '../../helpers/health.ts';
import { skipUnlessPacketCapture } from '../../helpers/privileges.ts';
import { captureLoopback, dataRecords, decodeIpfix, subtrees } from './tshark.ts';

const FIRST_RECORD = 16 + 4;
const EGRESS_HEALTH = TemplateShape.EGRESS | TemplateShape.HEALTH;

/** The health fields of the first record of `bytes` (an IPv4 egress flow without interface name). */
function healthFields(bytes: Buffer): Buffer {
  const at = FIRST_RECORD + TEMPLATES[EGRESS_HEALTH].fixedBytes - HEALTH_BYTES + 1;
  return bytes.subarray(at, at + HEALTH_BYTES);
}

test('a flow with health goes in its shape’s HEALTH template, with every measured value in order', () => {
  const { bytes } = new IpfixEncoder().encodeBatch(recordBatchOf([makeFlow({ health: FULL_HEALTH })]), 0);
  assert.equal(bytes.readUInt16BE(16), TEMPLATE_ID_BASE + EGRESS_HEALTH);
  const h = healthFields(bytes);
  assert.deepEqual(
    [
      h.readBigUInt64BE(0),
      h.readBigUInt64BE(8),
      h.readBigUInt64BE(16),
      h.readBigUInt64BE(24),
      h.readBigUInt64BE(32),
      h.readUInt32BE(40),
      h.readBigUInt64BE(44),
      h.readBigUInt64BE(52),
      h.readBigUInt64BE(60),
      h.readUInt32BE(68),
      h.readUInt16BE(72),
      h[74],
    ],
    [3_000n, 2n, 7_250_000n, 1_500_000n, 42_000_000n, 12, 310_000n, 2n, 2_896n, 8, 0x18, 1],
  );
  assert.equal(bytes.readUInt16BE(2), bytes.length, 'the message length covers the health fields');
});

test('parts not measured are zeros, and flows without health keep the shorter templates', () => {
  const { bytes } = new IpfixEncoder().encodeBatch(recordBatchOf([makeFlow({ health: RETRANS_ONLY })]), 0);
  const h = healthFields(bytes);
  assert.equal(h.readBigUInt64BE(52), 3n, 'retransmitted packets');
  assert.ok(h.subarray(0, 52).every((b) => b === 0));
  assert.ok(h.subarray(60).every((b) => b === 0));
  const plain = new IpfixEncoder().encodeBatch(recordBatchOf([makeFlow()]), 0).bytes;
  assert.equal(plain.readUInt16BE(16), TEMPLATE_ID_BASE + TemplateShape.EGRESS);
  assert.equal(plain.length, FIRST_RECORD + TEMPLATES[TemplateShape.EGRESS].fixedBytes + 1);
});

test('tshark reads the IANA drop counters and flowtap’s elements under its PEN', {
  skip: skipUnlessPacketCapture('capture the export on loopback with tshark'),
}, async (t) => {
  const collector = createSocket('udp4');
  collector.bind(0, '127.0.0.1');
  await once(collector, 'listening');
  t.after(() => collector.close());
  const port = collector.address().port;
  const capture = await captureLoopback((release) => t.after(release as () => void), `udp dst port ${port}`);
  const exporter = new IpfixUdpExporter({ host: '127.0.0.1', port });
  exporter.export(recordBatchOf([makeFlow({ health: FULL_HEALTH }), makeFlow({ srcPort: 9 })]));
  await exporter.stop();
  const messages = await decodeIpfix(await capture.stop(), `udp.port==${port},cflow`, {
    mergeDuplicateKeys: true,
  });

  const template = messages
    .flatMap((m) => subtrees(m, 'Set ').filter((set) => Number(set['cflow.flowset_id']) === 2))
    .flatMap((set) => subtrees(set, 'Template ('))
    .find((tpl) => Number(tpl['cflow.template_id']) === TEMPLATE_ID_BASE + EGRESS_HEALTH);
  const fields = subtrees(template ?? {}, 'Field (').map((f) => [
    // tshark names an element of a PEN it has no table for `..._field_type_enterprise`.
    Number(f['cflow.template_ipfix_field_type'] ?? f['cflow.template_ipfix_field_type_enterprise']),
    f['cflow.template_ipfix_pen_provided'] === '1' ? Number(f['cflow.template_ipfix_field_pen']) : 0,
  ]);
  assert.deepEqual(fields.slice(-12), [
    [IE.droppedOctetDeltaCount, 0],
    [IE.droppedPacketDeltaCount, 0],
    // Health's elements of flowtap's PEN are 1-10 (DNS tracking's follow from 11).
    ...Object.values(FLOWTAP_IE)
      .filter((ie) => ie <= FLOWTAP_IE.dropLatestTcpState)
      .map((ie) => [ie, FLOWTAP_PEN]),
  ]);

  const [health, plain] = dataRecords(messages);
  assert.equal(health.templateId, TEMPLATE_ID_BASE + EGRESS_HEALTH);
  assert.equal(health.fields['cflow.drop_octets'], '3000');
  assert.equal(health.fields['cflow.drop_packets'], '2');
  // tshark has no names for flowtap's PEN: it shows each value's bytes, in template order.
  assert.deepEqual(health.fields['cflow.enterprise_private_entry'], [
    '00:00:00:00:00:6e:a0:50', // latest RTT, 7.25 ms
    '00:00:00:00:00:16:e3:60', // min 1.5 ms
    '00:00:00:00:02:80:de:80', // max 42 ms
    '00:00:00:0c', // samples
    '00:00:00:00:00:04:ba:f0', // handshake 310 µs
    '00:00:00:00:00:00:00:02', // retransmitted packets
    '00:00:00:00:00:00:0b:50', // their bytes
    '00:00:00:08', // NETFILTER_DROP
    '00:18', // PSH|ACK
    '01', // TCP_ESTABLISHED
  ]);
  assert.equal(plain.templateId, TEMPLATE_ID_BASE + TemplateShape.EGRESS);
  assert.equal('cflow.drop_packets' in plain.fields, false);
});
