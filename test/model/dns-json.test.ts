/** A flow's DNS in the JSON form: netobserv's field names and values, then flowtap's counts. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dnsRcodeName } from '../../src/model/dns-names.ts';
import { flowToJson } from '../../src/model/flow.ts';
import { makeFlow } from '../helpers/flows.ts';

test("a DNS response prints netobserv's fields: id, flags, response code name, latency in ms, name", () => {
  const json = JSON.parse(
    flowToJson(
      makeFlow({
        proto: 17,
        srcPort: 53,
        dns: {
          queries: 0,
          answers: 1,
          unanswered: 0,
          malformed: 0,
          latestNs: 1n,
          header: { id: 6893, flags: 34179 },
          name: 'iamnotavaliddomain.com',
          latencyNs: 1_999_999n,
        },
      }),
    ),
  );
  assert.deepEqual(
    {
      DnsId: json.DnsId,
      DnsFlags: json.DnsFlags,
      DnsFlagsResponseCode: json.DnsFlagsResponseCode,
      DnsLatencyMs: json.DnsLatencyMs,
      DnsName: json.DnsName,
      DnsAnswers: json.DnsAnswers,
    },
    {
      DnsId: 6893,
      DnsFlags: 34179,
      DnsFlagsResponseCode: 'NXDomain',
      DnsLatencyMs: 1,
      DnsName: 'iamnotavaliddomain.com',
      DnsAnswers: 1,
    },
  );
  assert.equal('DnsErrno' in json, false);
  assert.equal('DnsQueries' in json, false);
});

test('an unanswered query prints its name and count, without a latency or response code of its own', () => {
  const json = JSON.parse(
    flowToJson(
      makeFlow({
        packets: 0,
        bytes: 0,
        dns: {
          queries: 0,
          answers: 0,
          unanswered: 1,
          malformed: 0,
          latestNs: 1n,
          header: { id: 7, flags: 0x0100 },
          name: 'slow.example',
        },
      }),
    ),
  );
  assert.equal(json.DnsUnanswered, 1);
  assert.equal(json.DnsName, 'slow.example');
  assert.equal(json.DnsLatencyMs, undefined);
  assert.equal(json.DnsFlagsResponseCode, 'NoError', "a query's rcode bits are 0");
});

test('response codes are named as netobserv names them, unknown ones by number', () => {
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 9, 11, 12, 15].map((rcode) => dnsRcodeName(0x8000 | rcode)),
    [
      'NoError',
      'FormErr',
      'ServFail',
      'NXDomain',
      'NotImp',
      'Refused',
      'NotAuth',
      'DSOTYPENI',
      'RCode12',
      'RCode15',
    ],
  );
});

test('the root name prints as a dot, a cut name says so, and an errno is printed', () => {
  const json = JSON.parse(
    flowToJson(
      makeFlow({
        dns: {
          queries: 0,
          answers: 0,
          unanswered: 0,
          malformed: 1,
          latestNs: 1n,
          name: '',
          nameTruncated: true,
          errno: 14,
        },
      }),
    ),
  );
  assert.equal(json.DnsName, '.');
  assert.equal(json.DnsNameTruncated, true);
  assert.equal(json.DnsErrno, 14);
  assert.equal(json.DnsMalformed, 1);
});
