/**
 * The IPFIX decoder of `flowtap collect`: flowtap's own messages read back to the flows they
 * carried, other exporters' element forms (times, reduced sizes, enterprise and unknown
 * elements), template withdrawal and redefinition, sequence gaps, and hostile messages counted
 * by reason without a throw.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RecordBatch } from '../../../src/codec/record-batch.ts';
import {
  DEFAULT_BATCH_ROWS,
  IpfixDecoder,
  type IpfixDecoderOptions,
  IpfixDrop,
  type IpfixDropReason,
} from '../../../src/export/ipfix/decode.ts';
import { IpfixEncoder } from '../../../src/export/ipfix/encoder.ts';
import { ExporterSession } from '../../../src/export/ipfix/exporter-session.ts';
import { batchToJsonLines } from '../../../src/export/json-lines.ts';
import { parseIp } from '../../../src/model/ip.ts';
import { seededRandom } from '../../helpers/flows.ts';
import { ipfixBatch } from './flows.ts';
import {
  be,
  type Field,
  ipv4,
  message,
  optionsTemplateSet,
  set,
  templateRecord,
  templateSet,
  varField,
} from './messages.ts';

/** A decoder whose batches and drops the test reads. */
function harness(options: Partial<IpfixDecoderOptions> = {}) {
  const batches: RecordBatch[] = [];
  const drops = new Map<IpfixDropReason, number>();
  const missing = { records: 0 };
  const decoder = new IpfixDecoder({
    drop: (reason) => drops.set(reason, (drops.get(reason) ?? 0) + 1),
    onBatch: (batch) => batches.push(batch),
    onMissingRecords: (count) => {
      missing.records += count;
    },
    ...options,
  });
  const session = new ExporterSession('192.0.2.1:4739', parseIp('192.0.2.1') as Uint8Array);
  const decode = (m: Buffer) => decoder.decode(session, m, 0, m.length);
  const json = () => {
    decoder.flush();
    return batches.map((b) => batchToJsonLines(b)).join('');
  };
  const flows = () => {
    decoder.flush();
    return batches.flatMap((b) => [...b.flows()]);
  };
  return { decoder, session, batches, drops, missing, decode, json, flows };
}

/** Messages of `encoder`: its templates, then the batch. */
function encoded(encoder: IpfixEncoder, batch: RecordBatch): Buffer[] {
  const out = encoder.templateMessages(1_700_000_000);
  const { bytes, messageEnds } = encoder.encodeBatch(batch, 1_700_000_000);
  let start = 0;
  for (const end of messageEnds) {
    out.push(bytes.subarray(start, end));
    start = end;
  }
  return out;
}

test("flowtap's own messages (health and DNS included) decode to the JSON of the flows exported, at UDP and TCP message sizes", () => {
  for (const maxMessageBytes of [1400, 65_535]) {
    const batch = ipfixBatch(600);
    const h = harness();
    for (const m of encoded(new IpfixEncoder({ maxMessageBytes }), batch)) h.decode(m);
    assert.equal(h.json(), batchToJsonLines(batch), `messages of at most ${maxMessageBytes} bytes`);
    assert.deepEqual(h.drops, new Map());
    assert.equal(h.missing.records, 0);
  }
});

test('rows are handed out in batches of batchRows per domain, the rest at flush', () => {
  const h = harness({ batchRows: 100 });
  for (const m of encoded(new IpfixEncoder({ maxMessageBytes: 65_535 }), ipfixBatch(250))) h.decode(m);
  assert.deepEqual(
    h.batches.map((b) => b.count),
    [100, 100],
  );
  h.decoder.flush();
  assert.deepEqual(
    h.batches.map((b) => b.count),
    [100, 100, 50],
  );
  assert.ok(DEFAULT_BATCH_ROWS >= 1000);
});

test('data sets before their template are counted as data_before_template, and decoded once it comes', () => {
  const encoder = new IpfixEncoder();
  const batch = ipfixBatch(20);
  const messages = encoded(encoder, batch);
  const templates = messages.splice(0, encoder.templateMessages(0).length);
  const h = harness();
  for (const m of messages) h.decode(m);
  assert.ok((h.drops.get(IpfixDrop.DATA_BEFORE_TEMPLATE) ?? 0) >= 1);
  assert.equal(h.flows().length, 0);
  for (const m of templates) h.decode(m);
  for (const m of messages) h.decode(m);
  assert.equal(h.json(), batchToJsonLines(batch));
});

/** A small template of another exporter: IPv4 5-tuple, counters, seconds. */
const TEMPLATE_300: Field[] = [
  [8, 4],
  [12, 4],
  [7, 2],
  [11, 2],
  [4, 1],
  [1, 4],
  [2, 4],
  [150, 4],
  [151, 4],
];

function record300(src: string, bytes: number): Buffer {
  return Buffer.concat([
    ipv4(src),
    ipv4('10.0.0.2'),
    be(1234, 2),
    be(80, 2),
    be(6, 1),
    be(bytes, 4),
    be(1, 4),
    be(1_700_000_000, 4),
    be(1_700_000_001, 4),
  ]);
}

test('a withdrawn template no longer decodes, and withdrawing with the set id drops every template', () => {
  const h = harness();
  h.decode(message([templateSet(templateRecord(300, TEMPLATE_300), templateRecord(301, TEMPLATE_300))]));
  h.decode(message([set(300, record300('10.0.0.1', 10)), set(301, record300('10.0.0.3', 30))]));
  assert.equal(h.flows().length, 2);
  h.decode(message([templateSet(templateRecord(300, []))]));
  h.decode(message([set(300, record300('10.0.0.1', 10)), set(301, record300('10.0.0.3', 30))]));
  assert.equal(h.flows().length, 3);
  assert.equal(h.drops.get(IpfixDrop.DATA_BEFORE_TEMPLATE), 1);
  h.decode(message([templateSet(templateRecord(2, []))]));
  h.decode(message([set(301, record300('10.0.0.3', 30))]));
  assert.equal(h.flows().length, 3);
  assert.equal(h.drops.get(IpfixDrop.DATA_BEFORE_TEMPLATE), 2);
  assert.equal(h.decoder.templateFields, 0);
});

test('a redefined template replaces the old one', () => {
  const h = harness();
  h.decode(message([templateSet(templateRecord(300, [[8, 4]]))]));
  h.decode(message([templateSet(templateRecord(300, TEMPLATE_300))]));
  h.decode(message([set(300, record300('10.0.0.7', 77))]));
  const [flow] = h.flows();
  assert.equal(flow.bytes, 77);
  assert.equal(h.decoder.templateFields, TEMPLATE_300.length);
});

test('templates are per observation domain', () => {
  const h = harness();
  h.decode(message([templateSet(templateRecord(300, TEMPLATE_300))], { observationDomainId: 1 }));
  h.decode(message([set(300, record300('10.0.0.1', 10))], { observationDomainId: 2 }));
  assert.equal(h.drops.get(IpfixDrop.DATA_BEFORE_TEMPLATE), 1);
  h.decode(message([set(300, record300('10.0.0.1', 10))], { observationDomainId: 1 }));
  assert.equal(h.flows().length, 1);
});

test("other exporters' forms: reduced-size counters, ipVersion, DSCP, ICMP type and code, unknown and enterprise elements skipped", () => {
  const h = harness();
  const fields: Field[] = [
    [60, 1], // ipVersion
    [8, 4],
    [12, 4],
    [4, 1],
    [999, 3], // unknown IANA element
    [1, 2, 9], // enterprise element with an IANA id: not flowtap's to read
    [1, 3], // octetDeltaCount in 3 bytes
    [86, 1], // packetTotalCount in 1 byte
    [6, 1], // tcpControlBits in 1 byte
    [195, 1], // ipDiffServCodePoint
    [176, 1], // icmpTypeIPv4
    [177, 1], // icmpCodeIPv4
    [500, 0xffff, 12_345], // variable-length enterprise element
    [152, 8],
    [153, 8],
    [10, 2], // ingressInterface in 2 bytes
    [82, 0xffff],
  ];
  h.decode(message([templateSet(templateRecord(400, fields))]));
  const record = Buffer.concat([
    be(4, 1),
    ipv4('10.1.1.1'),
    ipv4('10.1.1.2'),
    be(1, 1),
    be(0xabcdef, 3),
    be(0xffff, 2),
    be(70_000, 3),
    be(9, 1),
    be(0x12, 1),
    be(46, 1),
    be(8, 1),
    be(0, 1),
    varField(Buffer.alloc(300, 1)),
    be(1_700_000_000_250, 8),
    be(1_700_000_000_750, 8),
    be(7, 2),
    varField(Buffer.from('ens3')),
  ]);
  h.decode(message([set(400, Buffer.concat([record, record]))]));
  const flows = h.flows();
  assert.equal(flows.length, 2);
  const f = flows[0];
  assert.equal(f.etype, 0x0800);
  assert.equal(f.proto, 1);
  assert.equal(f.bytes, 70_000);
  assert.equal(f.packets, 9);
  assert.equal(f.tcpFlags, 0x12);
  assert.equal(f.dscp, 46);
  assert.equal(f.icmpType, 8);
  assert.equal(f.ifIndex, 7);
  assert.equal(f.interface, 'ens3');
  assert.equal(f.timeFlowStartNs, 1_700_000_000_250_000_000n);
  assert.equal(f.timeFlowEndNs, 1_700_000_000_750_000_000n);
  assert.deepEqual(
    Buffer.from(f.agentIp ?? []),
    Buffer.from(parseIp('192.0.2.1') ?? []),
    'the exporter address stands for the agent',
  );
  assert.deepEqual(h.drops, new Map());
});

test('system-uptime times count from the systemInitTimeMilliseconds of an options record', () => {
  const h = harness();
  h.decode(
    message([
      optionsTemplateSet(
        templateRecord(
          256,
          [
            [143, 4],
            [160, 8],
            [82, 16],
          ],
          1,
        ),
      ),
      templateSet(
        templateRecord(1024, [
          [8, 4],
          [12, 4],
          [22, 4],
          [21, 4],
        ]),
      ),
    ]),
  );
  const flow = set(1024, Buffer.concat([ipv4('10.0.0.1'), ipv4('10.0.0.2'), be(1000, 4), be(9500, 4)]));
  h.decode(message([flow], { exportTimeS: 1_700_000_123 }));
  h.decode(
    message([
      set(
        256,
        Buffer.concat([be(1, 4), be(1_600_000_000_000, 8), Buffer.from('a.pcap\0\0\0\0\0\0\0\0\0\0')]),
      ),
      flow,
    ]),
  );
  const [before, after] = h.flows();
  assert.equal(before.timeFlowStartNs, 1_700_000_123_000_000_000n, 'the export time until the base is known');
  assert.equal(after.timeFlowStartNs, 1_600_000_001_000_000_000n);
  assert.equal(after.timeFlowEndNs, 1_600_000_009_500_000_000n);
});

test('NTP microsecond and delta-microsecond times; a lone start time is also the end', () => {
  const h = harness();
  h.decode(
    message([
      templateSet(
        templateRecord(500, [
          [8, 4],
          [154, 8],
        ]),
        templateRecord(501, [
          [8, 4],
          [158, 4],
          [159, 4],
        ]),
      ),
    ]),
  );
  const ntpSeconds = 1_700_000_000 + 2_208_988_800;
  h.decode(
    message(
      [
        set(500, Buffer.concat([ipv4('10.0.0.1'), be(ntpSeconds, 4), be(2 ** 31, 4)])),
        set(501, Buffer.concat([ipv4('10.0.0.1'), be(2_500_000, 4), be(500_000, 4)])),
      ],
      { exportTimeS: 1_700_000_100 },
    ),
  );
  const [ntp, delta] = h.flows();
  assert.equal(ntp.timeFlowStartNs, 1_700_000_000_500_000_000n);
  assert.equal(ntp.timeFlowEndNs, 1_700_000_000_500_000_000n);
  assert.equal(delta.timeFlowStartNs, 1_700_000_097_500_000_000n);
  assert.equal(delta.timeFlowEndNs, 1_700_000_099_500_000_000n);
});

test('RFC 5103 reverse counters of another exporter make a bidirectional record', () => {
  const h = harness();
  h.decode(
    message([
      templateSet(
        templateRecord(600, [
          [8, 4],
          [12, 4],
          [1, 4],
          [2, 4],
          [1, 4, 29_305],
          [2, 4, 29_305],
          [5, 1, 29_305],
          [6, 1, 29_305],
        ]),
      ),
    ]),
  );
  h.decode(
    message([
      set(
        600,
        Buffer.concat([
          ipv4('10.0.0.1'),
          ipv4('10.0.0.2'),
          be(100, 4),
          be(1, 4),
          be(900, 4),
          be(3, 4),
          be(40, 1),
          be(0x12, 1),
        ]),
      ),
    ]),
  );
  const [flow] = h.flows();
  assert.deepEqual(
    {
      bytes: flow.reverse?.bytes,
      packets: flow.reverse?.packets,
      dscp: flow.reverse?.dscp,
      flags: flow.reverse?.tcpFlags,
    },
    { bytes: 900, packets: 3, dscp: 10, flags: 0x12 },
  );
});

test('an interface renamed mid-stream starts a new batch, so earlier rows keep the old name', () => {
  const h = harness();
  h.decode(
    message([
      templateSet(
        templateRecord(700, [
          [8, 4],
          [10, 4],
          [82, 0xffff],
        ]),
      ),
    ]),
  );
  const row = (name: string) => Buffer.concat([ipv4('10.0.0.1'), be(3, 4), varField(Buffer.from(name))]);
  h.decode(message([set(700, Buffer.concat([row('eth0'), row('eth0'), row('wan0'), row('wan0')]))]));
  assert.deepEqual(
    h.flows().map((f) => f.interface),
    ['eth0', 'eth0', 'wan0', 'wan0'],
  );
  assert.equal(h.batches.length, 2);
});

test('sequence numbers that skip ahead count the records missing; a stream going back counts none', () => {
  const h = harness();
  h.decode(message([templateSet(templateRecord(300, TEMPLATE_300))], { sequence: 10 }));
  const two = set(300, Buffer.concat([record300('10.0.0.1', 1), record300('10.0.0.1', 2)]));
  h.decode(message([two], { sequence: 10 }));
  h.decode(message([two], { sequence: 12 }));
  h.decode(message([two], { sequence: 20 }));
  assert.equal(h.missing.records, 6);
  h.decode(message([two], { sequence: 3 }));
  assert.equal(h.missing.records, 6);
});

test('hostile messages are counted by reason, never thrown', () => {
  const h = harness();
  const good = templateSet(templateRecord(300, TEMPLATE_300));
  const cases: [IpfixDropReason, Buffer][] = [
    [IpfixDrop.SHORT_MESSAGE, Buffer.from('000a0010', 'hex')],
    [IpfixDrop.NOT_IPFIX, Buffer.concat([be(9, 2), message([good]).subarray(2)])],
    [IpfixDrop.BAD_MESSAGE_LENGTH, message([good], { length: 8 })],
    [IpfixDrop.TRUNCATED_MESSAGE, message([good], { length: 2000 })],
    // A set of length 0 would never advance.
    [IpfixDrop.BAD_SET_LENGTH, message([Buffer.from('01000000', 'hex'), good])],
    [IpfixDrop.BAD_SET_LENGTH, message([Buffer.from('0100ff00', 'hex')])],
    // A template whose field list runs past its set.
    [IpfixDrop.BAD_TEMPLATE, message([set(2, templateRecord(300, TEMPLATE_300).subarray(0, 20))])],
    // A template of zero-length fields: records of no bytes, a loop.
    [
      IpfixDrop.BAD_TEMPLATE,
      message([
        templateSet(
          templateRecord(302, [
            [1, 0],
            [2, 0],
          ]),
        ),
      ]),
    ],
    [IpfixDrop.BAD_TEMPLATE, message([templateSet(templateRecord(5, TEMPLATE_300))])],
    [IpfixDrop.BAD_TEMPLATE, message([optionsTemplateSet(templateRecord(303, [[1, 4]], 0))])],
    [IpfixDrop.RESERVED_SET, message([set(7, Buffer.alloc(8))])],
  ];
  for (const [reason, m] of cases) {
    const before = h.drops.get(reason) ?? 0;
    h.decode(m);
    assert.equal(h.drops.get(reason), before + 1, reason);
  }
  // A variable-length field whose length runs past the set.
  h.decode(
    message([
      templateSet(
        templateRecord(310, [
          [8, 4],
          [82, 0xffff],
        ]),
      ),
    ]),
  );
  h.decode(
    message([
      set(
        310,
        Buffer.concat([
          ipv4('10.0.0.1'),
          varField(Buffer.from('ok')),
          ipv4('10.0.0.1'),
          be(200, 1),
          Buffer.from('short'),
        ]),
      ),
    ]),
  );
  assert.equal(h.drops.get(IpfixDrop.TRUNCATED_RECORD), 1);
  assert.equal(h.flows().length, 1, 'the records before the damage are kept');
});

test('the template budget bounds what a flood of templates holds', () => {
  const h = harness({ maxTemplateFields: 20 });
  h.decode(message([templateSet(templateRecord(300, TEMPLATE_300), templateRecord(301, TEMPLATE_300))]));
  h.decode(message([templateSet(templateRecord(302, TEMPLATE_300))]));
  assert.equal(h.drops.get(IpfixDrop.TEMPLATE_LIMIT), 1);
  assert.equal(h.decoder.templateFields, 18);
  h.decoder.closeSession(h.session);
  assert.equal(h.decoder.templateFields, 0);
});

test('randomly damaged messages never throw and never hang', () => {
  const random = seededRandom(17);
  const encoder = new IpfixEncoder({ maxMessageBytes: 1400 });
  const messages = encoded(encoder, ipfixBatch(200));
  const h = harness();
  for (let round = 0; round < 3000; round++) {
    const m = Buffer.from(messages[Math.floor(random() * messages.length)]);
    const flips = 1 + Math.floor(random() * 8);
    for (let k = 0; k < flips; k++) m[Math.floor(random() * m.length)] = Math.floor(random() * 256);
    const cut = random() < 0.3 ? Math.floor(random() * m.length) : m.length;
    h.decoder.decode(h.session, m, 0, cut);
  }
  h.decoder.flush();
  assert.ok(h.drops.size > 0);
});
