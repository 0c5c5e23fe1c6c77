import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PARSE_OK, parseEthernetFrame } from '../../../src/capture/packet/frame-parser.ts';
import { RecordBatchBuilder } from '../../../src/codec/record-batch.ts';
import { formatIp } from '../../../src/model/ip.ts';
import { formatMac } from '../../../src/model/mac.ts';
import { PACKET_VECTORS, VECTOR_DST_MAC, VECTOR_SRC_MAC } from '../../vectors/packets.ts';

test('every shared packet vector gives the same key or parse error as the kernel program', () => {
  for (const vector of PACKET_VECTORS) {
    const frame = Buffer.from(vector.frame, 'hex');
    const builder = new RecordBatchBuilder(1);
    const row = builder.appendRow();
    const status = parseEthernetFrame(frame, 0, frame.length, builder.bytes, row);
    if ('parseError' in vector.expected) {
      assert.notEqual(status, PARSE_OK, `${vector.name}: parse error`);
      continue;
    }
    assert.equal(status, PARSE_OK, `${vector.name}: parsed`);
    const flow = builder.finish().flow(0);
    const e = vector.expected;
    assert.deepEqual(
      {
        etype: flow.etype,
        proto: flow.proto,
        srcAddr: formatIp(flow.srcAddr, 0, flow.etype),
        dstAddr: formatIp(flow.dstAddr, 0, flow.etype),
        srcPort: flow.srcPort,
        dstPort: flow.dstPort,
        icmpType: flow.icmpType,
        icmpCode: flow.icmpCode,
        tcpFlags: flow.tcpFlags,
        dscp: flow.dscp,
        bytes: frame.length,
      },
      e,
      vector.name,
    );
    assert.equal(formatMac(flow.srcMac), VECTOR_SRC_MAC, vector.name);
    assert.equal(formatMac(flow.dstMac), VECTOR_DST_MAC, vector.name);
  }
});

test('a frame cut anywhere inside the headers the key needs is never parsed as a flow', () => {
  for (const vector of PACKET_VECTORS) {
    if ('parseError' in vector.expected) continue;
    const frame = Buffer.from(vector.frame, 'hex');
    const builder = new RecordBatchBuilder(1);
    for (let cut = 0; cut < frame.length; cut++) {
      const row = builder.appendRow();
      const status = parseEthernetFrame(frame, 0, cut, builder.bytes, row);
      builder.dropLastRow();
      if (status === PARSE_OK) {
        // A shorter prefix may only parse when the rest is payload the key does not read.
        const full = new RecordBatchBuilder(1);
        parseEthernetFrame(frame, 0, frame.length, full.bytes, full.appendRow());
        const again = new RecordBatchBuilder(1);
        parseEthernetFrame(frame, 0, cut, again.bytes, again.appendRow());
        assert.deepEqual(
          again.bytes.subarray(0, 104),
          full.bytes.subarray(0, 104),
          `${vector.name} cut at ${cut}`,
        );
      }
    }
  }
});
