/** The JSON fields of issue 13 (agent IP, interfaces crossed, VLANs, tunnel, reverse counters). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TunnelType } from '../../src/codec/v2-layout.ts';
import { flowToJson } from '../../src/model/flow.ts';
import { InterfaceRegistry } from '../../src/model/interfaces.ts';
import { parseIp } from '../../src/model/ip.ts';
import { tunnelLabel, tunnelTypeName } from '../../src/model/names.ts';
import { makeFlow } from '../helpers/flows.ts';

const T0 = 1_700_000_000_000_000_000n;

test('every field of issue 13 prints after the others, in the reference style', () => {
  const names = new InterfaceRegistry();
  names.set(3, 'veth3');
  names.set(4, 'br0');
  const json = flowToJson(
    makeFlow({
      agentIp: parseIp('192.0.2.10')!,
      crossed: [
        { ifIndex: 3, direction: 0 },
        { ifIndex: 4, direction: 1 },
        { ifIndex: 5, direction: 1 },
      ],
      vlanOuter: 100,
      vlanInner: 20,
      tunnel: { type: 1, id: 42, srcAddr: parseIp('198.51.100.1')!, dstAddr: parseIp('fd00::2')! },
      reverse: {
        bytes: 5000,
        packets: 4,
        timeFlowStartNs: T0 + 5n,
        timeFlowEndNs: T0 + 9n,
        tcpFlags: 18,
        dscp: 46,
      },
    }),
    names,
  );
  assert.ok(
    json.endsWith(
      ',"Packets":1,"AgentIP":"192.0.2.10","Interfaces":["veth3","br0",""],"IfDirections":[0,1,1]' +
        ',"VlanId":100,"InnerVlanId":20' +
        ',"Tunnel":{"Type":"VXLAN","Id":42,"SrcAddr":"198.51.100.1","DstAddr":"fd00::2"}' +
        ',"RevBytes":5000,"RevPackets":4,"RevTimeFlowStart":"2023-11-14T22:13:20.000000005Z"' +
        ',"RevTimeFlowEnd":"2023-11-14T22:13:20.000000009Z","RevTcpFlags":18,"RevDscp":46}',
    ),
    json,
  );
  assert.doesNotThrow(() => JSON.parse(json));
});

test('an IPv6 agent prints in RFC 5952 form, and one-way traffic of a biflow has zero reverse counts only', () => {
  const json = JSON.parse(
    flowToJson(
      makeFlow({
        agentIp: parseIp('2001:DB8::7')!,
        reverse: { bytes: 0, packets: 0, timeFlowStartNs: 0n, timeFlowEndNs: 0n, tcpFlags: 0, dscp: 0 },
      }),
    ),
  );
  assert.equal(json.AgentIP, '2001:db8::7');
  assert.equal(json.RevBytes, 0);
  assert.equal(json.RevPackets, 0);
  assert.equal(json.RevTimeFlowStart, undefined);
});

test('a flow without them prints none of them', () => {
  const json = JSON.parse(flowToJson(makeFlow()));
  for (const key of [
    'AgentIP',
    'Interfaces',
    'IfDirections',
    'VlanId',
    'InnerVlanId',
    'Tunnel',
    'RevBytes',
  ]) {
    assert.equal(json[key], undefined, key);
  }
});

test('tunnel names cover every tunnel type of the record layout', () => {
  assert.deepEqual(
    Object.entries(TunnelType).map(([key, value]) => [key, tunnelTypeName(value)]),
    [
      ['NONE', ''],
      ['VXLAN', 'VXLAN'],
      ['GENEVE', 'Geneve'],
      ['GRE', 'GRE'],
      ['IPIP', 'IPIP'],
    ],
  );
  assert.equal(tunnelLabel(3, 0, '192.0.2.1', '192.0.2.2'), 'GRE 192.0.2.1>192.0.2.2');
  assert.equal(tunnelLabel(2, 7, 'fd00::1', 'fd00::2'), 'Geneve 7 fd00::1>fd00::2');
});
