/**
 * The offline DNS parser against the shared vectors (test/vectors/dns.ts), and against mutated
 * messages: it never throws, never reads outside its bounds, and gives every message a verdict.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  DNS_MALFORMED_REASONS,
  DNS_OK,
  DnsMessage,
  dnsErrnoOf,
  parseDnsMessage,
  parseDnsPayload,
} from '../../../src/capture/dns/dns-parser.ts';
import { DNS_VECTORS, type DnsVector, tcpPayload } from '../../vectors/dns.ts';
import { fuzzDnsParser } from './dns-fuzz-corpus.ts';

/** What the parser makes of a vector, in the vector's expectation shape. */
function observed(vector: DnsVector): object {
  const tcp = vector.transport === 'tcp';
  const payload = Buffer.from(tcp ? tcpPayload(vector.message, vector.tcpLength) : vector.message, 'hex');
  const out = new DnsMessage();
  const status = parseDnsPayload(payload, 0, payload.length, payload.length, tcp, out);
  if (status !== DNS_OK) {
    return {
      malformed: DNS_MALFORMED_REASONS[status],
      errno: dnsErrnoOf(status),
      ...(out.hasHeader ? { id: out.id, flags: out.flags } : {}),
    };
  }
  return {
    id: out.id,
    flags: out.flags,
    ...(out.hasName ? { name: out.nameText() } : {}),
    ...(out.nameTruncated ? { nameTruncated: true } : {}),
  };
}

for (const vector of DNS_VECTORS) {
  test(`DNS vector: ${vector.name}`, () => {
    assert.deepEqual(observed(vector), vector.expected);
  });
}

test('a UDP payload padded past the message is read to the length the UDP header gives', () => {
  const message = Buffer.from(DNS_VECTORS[0].message, 'hex');
  const padded = Buffer.concat([message, Buffer.alloc(20, 0xff)]);
  const out = new DnsMessage();
  assert.equal(parseDnsPayload(padded, 0, padded.length, message.length, false, out), DNS_OK);
  assert.equal(out.nameText(), 'www.example.com');
});

test('the parser reads nothing before start or past end, wherever the message sits', () => {
  const message = Buffer.from(DNS_VECTORS[0].message, 'hex');
  // Poison around the message: a read outside [start, end) would change the name.
  const data = Buffer.concat([Buffer.alloc(7, 0x41), message, Buffer.alloc(9, 0x41)]);
  const out = new DnsMessage();
  assert.equal(parseDnsMessage(data, 7, 7 + message.length, message.length, out), DNS_OK);
  assert.equal(out.nameText(), 'www.example.com');
  // The same message cut one byte before its end: the question's class is missing.
  assert.equal(
    DNS_MALFORMED_REASONS[parseDnsMessage(data, 7, 7 + message.length - 1, message.length, out)],
    'question-truncated',
  );
});

test('200 000 mutated messages each get a verdict and none throws', () => {
  const { messages, verdicts } = fuzzDnsParser(200_000, 0x5eed);
  assert.equal(messages, 200_000);
  let total = 0;
  for (const n of verdicts) total += n;
  assert.equal(total, messages, 'every message is counted parsed or malformed by a reason');
  // The mutations reach every verdict: parsed, and each malformed reason.
  for (let reason = 0; reason < DNS_MALFORMED_REASONS.length; reason++) {
    assert.ok(verdicts[reason] > 0, `some message gives ${DNS_MALFORMED_REASONS[reason]}`);
  }
});
