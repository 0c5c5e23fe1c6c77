import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { flowToJson } from '../../src/model/flow.ts';
import { formatIp, formatIpv6, parseIp } from '../../src/model/ip.ts';
import { formatMac, macToNumber, parseMac } from '../../src/model/mac.ts';
import { directionName, humanBytes, tcpFlagNames, transportProtocolName } from '../../src/model/names.ts';
import { formatRfc3339Nano, parseRfc3339Nano } from '../../src/model/time.ts';
import { makeFlow } from '../helpers/flows.ts';

const REFERENCE_JSON =
  '{"Etype":2048,"Direction":"EGRESS","DataLink":{"SrcMac":"08:00:27:23:e8:8a","DstMac":"52:54:00:12:35:02"},"Network":{"SrcAddr":"10.0.2.15","DstAddr":"10.0.2.2"},"Transport":{"SrcPort":22,"DstPort":51819,"Proto":"TCP"},"Bytes":56320,"TimeFlowStart":"2022-03-17T07:42:12.414480074Z","TimeFlowEnd":"2022-03-17T07:42:12.414849771Z","Interface":"eth0","Packets":2}';

describe('JSON form', () => {
  test('the reference documentation example prints byte for byte', () => {
    const flow = makeFlow({
      etype: 2048,
      direction: 1,
      srcMac: '08:00:27:23:e8:8a',
      dstMac: '52:54:00:12:35:02',
      srcAddr: '10.0.2.15',
      dstAddr: '10.0.2.2',
      srcPort: 22,
      dstPort: 51819,
      proto: 6,
      bytes: 56320,
      timeFlowStartNs: parseRfc3339Nano('2022-03-17T07:42:12.414480074Z')!,
      timeFlowEndNs: parseRfc3339Nano('2022-03-17T07:42:12.414849771Z')!,
      interface: 'eth0',
      packets: 2,
    });
    assert.equal(flowToJson(flow), REFERENCE_JSON);
  });

  test('extensions are appended only when set', () => {
    const json = JSON.parse(
      flowToJson(
        makeFlow({ proto: 1, icmpType: 8, icmpCode: 0, tcpFlags: 0x12, dscp: 46, srcPort: 0, dstPort: 0 }),
      ),
    );
    assert.equal(json.Transport.Proto, 'ICMP');
    assert.equal(json.TcpFlags, 0x12);
    assert.equal(json.Dscp, 46);
    assert.equal(json.IcmpType, 8);
    assert.equal(json.IcmpCode, 0);
  });

  test('every ICMP flow carries IcmpType and IcmpCode, also the echo reply 0/0, and other flows none', () => {
    const reply = JSON.parse(
      flowToJson(makeFlow({ proto: 1, icmpType: 0, icmpCode: 0, srcPort: 0, dstPort: 0 })),
    );
    assert.deepEqual([reply.IcmpType, reply.IcmpCode], [0, 0]);
    const v6 = JSON.parse(flowToJson(makeFlow({ etype: 0x86dd, proto: 58, icmpType: 1, icmpCode: 4 })));
    assert.deepEqual([v6.IcmpType, v6.IcmpCode], [1, 4]);
    const udp = JSON.parse(flowToJson(makeFlow({ proto: 17 })));
    assert.equal('IcmpType' in udp || 'IcmpCode' in udp, false);
  });

  test('IPv6 flows print addresses in RFC 5952 form', () => {
    const json = JSON.parse(
      flowToJson(makeFlow({ etype: 0x86dd, srcAddr: '2001:DB8:0:0:0:0:0:1', dstAddr: 'fe80::1:0:0:2' })),
    );
    assert.equal(json.Network.SrcAddr, '2001:db8::1');
    assert.equal(json.Network.DstAddr, 'fe80::1:0:0:2');
  });

  test('interface names are JSON-escaped', () => {
    assert.equal(JSON.parse(flowToJson(makeFlow({ interface: 'we"ird\\if' }))).Interface, 'we"ird\\if');
  });
});

describe('names', () => {
  test('protocols print by the reference names, flowtap extensions, and number otherwise', () => {
    assert.deepEqual([0, 1, 2, 4, 6, 8, 12, 17, 22, 29, 33, 41, 46, 136].map(transportProtocolName), [
      'IP',
      'ICMP',
      'IGMP',
      'IPIP',
      'TCP',
      'EGP',
      'PUP',
      'UDP',
      'IDP',
      'TP',
      'DCCP',
      'IPV6',
      'RSVP',
      'UDPLITE',
    ]);
    assert.deepEqual([47, 50, 51, 58, 132, 99].map(transportProtocolName), [
      'GRE',
      'ESP',
      'AH',
      'ICMPv6',
      'SCTP',
      '99',
    ]);
  });

  test('directions print as INGRESS, EGRESS or UNKNOWN', () => {
    assert.deepEqual([0, 1, 2].map(directionName), ['INGRESS', 'EGRESS', 'UNKNOWN']);
  });

  test('human bytes switch units at each power of 1024 and print GiB', () => {
    assert.equal(humanBytes(0), '0');
    assert.equal(humanBytes(1023), '1023');
    assert.equal(humanBytes(1024), '1.00 KiB');
    assert.equal(humanBytes(1536), '1.50 KiB');
    assert.equal(humanBytes(5 * 1024 * 1024), '5.00 MiB');
    assert.equal(humanBytes(3 * 1024 ** 3 + 512 * 1024 ** 2), '3.50 GiB');
  });

  test('TCP flags print by name', () => {
    assert.equal(tcpFlagNames(0x12), 'SYN|ACK');
    assert.equal(tcpFlagNames(0), '');
  });
});

describe('addresses', () => {
  test('MACs print lower-case and colon separated', () => {
    assert.equal(formatMac(Uint8Array.of(0xaa, 0xbb, 0xcc, 0x0d, 0xe, 0xff)), 'aa:bb:cc:0d:0e:ff');
    assert.equal(macToNumber(parseMac('11:22:33:44:55:66')!), 0x112233445566);
  });

  test('RFC 5952: the longest zero run is compressed, the first of equal runs, never a single group', () => {
    const f = (t: string) => formatIpv6(parseIp(t)!);
    assert.equal(f('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1');
    assert.equal(f('2001:db8:0:1:1:1:1:1'), '2001:db8:0:1:1:1:1:1');
    assert.equal(f('0:0:0:0:0:0:0:0'), '::');
    assert.equal(f('::1'), '::1');
    assert.equal(f('2001:0:0:1:0:0:0:1'), '2001:0:0:1::1');
    assert.equal(f('::ffff:192.0.2.1'), '::ffff:192.0.2.1');
  });

  test('IPv4 flows print dotted quads; mapped addresses in IPv6 flows keep the ::ffff: prefix', () => {
    const v4 = parseIp('192.168.1.20')!;
    assert.equal(formatIp(v4, 0, 0x0800), '192.168.1.20');
    assert.equal(formatIp(v4, 0, 0x86dd), '::ffff:192.168.1.20');
    assert.equal(formatIp(new Uint8Array(16), 0, 0x0806), '0.0.0.0');
  });

  test('parsing rejects what is not an address', () => {
    for (const bad of ['1.2.3', '256.1.1.1', '1::2::3', 'g::1', '1:2:3:4:5:6:7:8:9', '']) {
      assert.equal(parseIp(bad), undefined, bad);
    }
  });
});

describe('time', () => {
  test('RFC 3339 text drops trailing zeros of the fraction as Go does', () => {
    assert.equal(formatRfc3339Nano(1647502932414480074n), '2022-03-17T07:42:12.414480074Z');
    assert.equal(formatRfc3339Nano(1647502932410000000n), '2022-03-17T07:42:12.41Z');
    assert.equal(formatRfc3339Nano(1647502932000000000n), '2022-03-17T07:42:12Z');
  });
});

test('times in different seconds format exactly whatever order they come in, seconds 64 apart included', () => {
  const base = 1_700_000_000n * 1_000_000_000n;
  const times = [base, base + 5_000_000_001n, base + 64_000_000_000n, base + 1n, base - 1n];
  const expected = [
    '2023-11-14T22:13:20Z',
    '2023-11-14T22:13:25.000000001Z',
    '2023-11-14T22:14:24Z',
    '2023-11-14T22:13:20.000000001Z',
    '2023-11-14T22:13:19.999999999Z',
  ];
  for (let round = 0; round < 2; round++) {
    assert.deepEqual(
      times.map((t) => formatRfc3339Nano(t)),
      expected,
    );
  }
});
