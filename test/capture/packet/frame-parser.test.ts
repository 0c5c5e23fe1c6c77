import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PARSE_OK, parseEthernetFrame } from '../../../src/capture/packet/frame-parser.ts';
import { RecordBatchBuilder } from '../../../src/codec/record-batch.ts';
import { V2_RECORD_BYTES } from '../../../src/codec/v2-layout.ts';
import { formatMac } from '../../../src/model/mac.ts';
import {
  ALL_PACKET_VECTORS,
  expectedOf,
  observedFields,
  VECTOR_DST_MAC,
  VECTOR_SRC_MAC,
  withDefaults,
} from '../../vectors/packets.ts';

for (const tunnels of [false, true]) {
  test(`every shared packet vector gives the same key or parse error as the kernel program (tunnels ${tunnels ? 'on' : 'off'})`, () => {
    for (const vector of ALL_PACKET_VECTORS) {
      const frame = Buffer.from(vector.frame, 'hex');
      const builder = new RecordBatchBuilder(1);
      const row = builder.appendRow();
      const status = parseEthernetFrame(frame, 0, frame.length, builder.bytes, row, tunnels);
      const expected = expectedOf(vector, tunnels);
      if ('parseError' in expected) {
        assert.notEqual(status, PARSE_OK, `${vector.name}: parse error`);
        continue;
      }
      assert.equal(status, PARSE_OK, `${vector.name}: parsed`);
      const flow = builder.finish().flow(0);
      assert.deepEqual({ ...observedFields(flow), bytes: frame.length }, withDefaults(expected), vector.name);
      assert.equal(formatMac(flow.srcMac), VECTOR_SRC_MAC, vector.name);
      assert.equal(formatMac(flow.dstMac), VECTOR_DST_MAC, vector.name);
    }
  });
}

for (const tunnels of [false, true]) {
  test(`a frame cut anywhere inside the headers the key needs is never parsed as a flow (tunnels ${tunnels ? 'on' : 'off'})`, () => {
    for (const vector of ALL_PACKET_VECTORS) {
      if ('parseError' in expectedOf(vector, tunnels)) continue;
      const frame = Buffer.from(vector.frame, 'hex');
      const builder = new RecordBatchBuilder(1);
      for (let cut = 0; cut < frame.length; cut++) {
        const row = builder.appendRow();
        const status = parseEthernetFrame(frame, 0, cut, builder.bytes, row, tunnels);
        builder.dropLastRow();
        if (status === PARSE_OK) {
          // A shorter prefix may only parse when the rest is payload the key does not read.
          const full = new RecordBatchBuilder(1);
          parseEthernetFrame(frame, 0, frame.length, full.bytes, full.appendRow(), tunnels);
          const again = new RecordBatchBuilder(1);
          parseEthernetFrame(frame, 0, cut, again.bytes, again.appendRow(), tunnels);
          assert.deepEqual(
            again.bytes.subarray(0, V2_RECORD_BYTES),
            full.bytes.subarray(0, V2_RECORD_BYTES),
            `${vector.name} cut at ${cut}`,
          );
        }
      }
    }
  });
}
