import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readU16, readU32 } from '../../../src/capture/pcap/byte-order.ts';
import { seededRandom } from '../../helpers/flows.ts';

test('header integers read as Buffer reads them, in both byte orders and with the top bit set', () => {
  const random = seededRandom(3);
  const data = Buffer.from(Array.from({ length: 64 }, () => Math.floor(random() * 256)));
  data.fill(0xff, 0, 4);
  for (let at = 0; at + 4 <= data.length; at++) {
    assert.equal(readU32(data, at, true), data.readUInt32LE(at));
    assert.equal(readU32(data, at, false), data.readUInt32BE(at));
    assert.equal(readU16(data, at, true), data.readUInt16LE(at));
    assert.equal(readU16(data, at, false), data.readUInt16BE(at));
  }
});
