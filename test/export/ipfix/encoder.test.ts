/** IpfixEncoder byte-level behaviour that needs no network. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { recordBatchOf } from '../../../src/codec/record-batch.ts';
import { ConfigError } from '../../../src/errors.ts';
import { IpfixEncoder } from '../../../src/export/ipfix/encoder.ts';
import { MAX_INTERFACE_NAME_BYTES, TEMPLATES } from '../../../src/export/ipfix/templates.ts';
import { InterfaceRegistry } from '../../../src/model/interfaces.ts';
import { makeFlow, seededRandom } from '../../helpers/flows.ts';
import { variedBatch } from './flows.ts';

/** Offset of flowStartMilliseconds in an IPv4 record (after addresses, ports, protocol, counters). */
const IPV4_START_MS_OFFSET = 4 + 4 + 2 + 2 + 1 + 8 + 8;
const FIRST_RECORD = 16 + 4;

test('an out-of-range message size or observation domain is a ConfigError', () => {
  assert.throws(() => new IpfixEncoder({ maxMessageBytes: 100 }), ConfigError);
  assert.throws(() => new IpfixEncoder({ maxMessageBytes: 70_000 }), ConfigError);
  assert.throws(() => new IpfixEncoder({ observationDomainId: -1 }), ConfigError);
});

test('millisecond timestamps equal the nanoseconds divided exactly, across the 64-bit range', () => {
  const random = seededRandom(7);
  const encoder = new IpfixEncoder();
  for (let k = 0; k < 2000; k++) {
    const ns = (BigInt(Math.floor(random() * 2 ** 32)) << 32n) | BigInt(Math.floor(random() * 2 ** 32));
    const { bytes } = encoder.encodeBatch(recordBatchOf([makeFlow({ timeFlowStartNs: ns })]), 0);
    assert.equal(bytes.readBigUInt64BE(FIRST_RECORD + IPV4_START_MS_OFFSET), ns / 1_000_000n, `ns ${ns}`);
  }
});

test('interface names longer than the limit are cut at a character boundary', () => {
  const names = new InterfaceRegistry();
  names.set(1, 'é'.repeat(MAX_INTERFACE_NAME_BYTES));
  const encoder = new IpfixEncoder();
  const { bytes } = encoder.encodeBatch(recordBatchOf([makeFlow({ ifIndex: 1 })], names), 0);
  const lengthAt = FIRST_RECORD + TEMPLATES[0].nameOffset;
  assert.equal(bytes[lengthAt], MAX_INTERFACE_NAME_BYTES);
  assert.equal(
    bytes.toString('utf8', lengthAt + 1, lengthAt + 1 + bytes[lengthAt]),
    'é'.repeat(MAX_INTERFACE_NAME_BYTES / 2),
  );
  assert.equal(bytes.readUInt16BE(2), bytes.length, 'the message length covers the record');
});

test('sequence numbers count the data records sent before each message, across batches', () => {
  const encoder = new IpfixEncoder({ maxMessageBytes: 512 });
  let before = 0;
  for (let k = 0; k < 3; k++) {
    const { bytes, messageEnds } = encoder.encodeBatch(variedBatch(17), 0);
    assert.equal(bytes.readUInt32BE(8), before);
    assert.equal(messageEnds.at(-1), bytes.length);
    before += 17;
  }
  assert.equal(encoder.sequenceNumber, 51);
  assert.equal(
    encoder.templateMessages(0)[0].readUInt32BE(8),
    51,
    'template messages carry but do not advance it',
  );
});
