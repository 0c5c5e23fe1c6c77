/**
 * ipfix+udp decoded by tshark's IPFIX dissector from a live loopback capture: every field of
 * IPv4 and IPv6 flows in both directions, every template, sequence numbers and message sizes.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { IE, SHAPE_COUNT } from '../../../src/export/ipfix/templates.ts';
import { IpfixUdpExporter } from '../../../src/export/ipfix/udp.ts';
import { skipUnlessPacketCapture } from '../../helpers/privileges.ts';
import { assertDecodedVariedFlows, variedBatch } from './flows.ts';
import { captureLoopback, dataRecords, decodeIpfix, subtrees } from './tshark.ts';

const skip = skipUnlessPacketCapture('capture the export on loopback with tshark');

const FLOWS = 40;
const MAX_MESSAGE_BYTES = 512;
const OBSERVATION_DOMAIN_ID = 0xc0ffee;

describe('ipfix+udp export decoded by tshark', { skip }, () => {
  let messages: Record<string, unknown>[] = [];
  const releases: (() => unknown)[] = [];
  after(async () => {
    for (const release of releases.reverse()) await release();
  });

  before(async () => {
    const collector = createSocket('udp4');
    collector.bind(0, '127.0.0.1');
    await once(collector, 'listening');
    releases.push(() => collector.close());
    const port = collector.address().port;
    const capture = await captureLoopback((release) => releases.push(release), `udp dst port ${port}`);
    let datagrams = 0;
    collector.on('message', () => datagrams++);
    const exporter = new IpfixUdpExporter({
      host: '127.0.0.1',
      port,
      maxMessageBytes: MAX_MESSAGE_BYTES,
      observationDomainId: OBSERVATION_DOMAIN_ID,
    });
    exporter.export(variedBatch(FLOWS / 2));
    exporter.export(variedBatch(FLOWS / 2, FLOWS / 2));
    await exporter.stop();
    assert.equal(exporter.stats.batchesSent, 2);
    const file = await capture.stop();
    assert.ok(datagrams > 0, 'the collector socket received the datagrams');
    messages = await decodeIpfix(file, `udp.port==${port},cflow`);
  });

  it('decodes every field of every IPv4 and IPv6 flow as sent, in its family and direction template', () => {
    assertDecodedVariedFlows(dataRecords(messages), FLOWS);
  });

  it('sends every template first, in messages within the size bound', () => {
    const templates = messages
      .flatMap((m) => subtrees(m, 'Set ').filter((set) => Number(set['cflow.flowset_id']) === 2))
      .flatMap((set) => subtrees(set, 'Template ('));
    assert.deepEqual(
      templates.map((t) => Number(t['cflow.template_id'])),
      Array.from({ length: SHAPE_COUNT }, (_, i) => 256 + i),
    );
    const elementsOf = (t: Record<string, unknown>) =>
      subtrees(t, 'Field (').map((f) => Number(f['cflow.template_ipfix_field_type']));
    const common = [7, 11, 4, 1, 2, 152, 153, 61, 56, 80, 256, 6, 5];
    const identity = [IE.vlanId, IE.dot1qVlanId, IE.dot1qCustomerVlanId, IE.layer2SegmentId, 82];
    const v4 = [IE.exporterIPv4Address, ...identity, IE.icmpTypeCodeIPv4];
    const v6 = [IE.exporterIPv4Address, ...identity, IE.icmpTypeCodeIPv6];
    assert.deepEqual(elementsOf(templates[0]), [8, 12, ...common, IE.ingressInterface, ...v4]);
    assert.deepEqual(elementsOf(templates[1]), [8, 12, ...common, IE.egressInterface, ...v4]);
    assert.deepEqual(elementsOf(templates[2]), [27, 28, ...common, IE.ingressInterface, ...v6]);
    assert.deepEqual(elementsOf(templates[3]), [27, 28, ...common, IE.egressInterface, ...v6]);
    assert.deepEqual(elementsOf(templates[4]), [
      8,
      12,
      ...common,
      IE.ingressInterface,
      IE.exporterIPv6Address,
      ...identity,
      IE.icmpTypeCodeIPv4,
    ]);
  });

  it('numbers each message with the count of data records sent before it', () => {
    let recordsBefore = 0;
    for (const message of messages) {
      assert.equal(Number(message['cflow.sequence']), recordsBefore);
      for (const set of subtrees(message, 'Set ')) {
        if (Number(set['cflow.flowset_id']) >= 256) recordsBefore += subtrees(set, 'Flow ').length;
      }
    }
    assert.equal(recordsBefore, FLOWS);
  });

  it('keeps every message within the configured size and observation domain', () => {
    assert.ok(messages.length > 2, 'the flows needed several messages');
    for (const message of messages) {
      assert.equal(Number(message['cflow.version']), 10);
      assert.ok(Number(message['cflow.len']) <= MAX_MESSAGE_BYTES);
      assert.equal(Number(message['cflow.od_id']), OBSERVATION_DOMAIN_ID);
    }
  });
});
