import assert from 'node:assert/strict';
import { test } from 'node:test';
import { flowServiceName, serviceName } from '../../src/model/services.ts';

const TCP = 6;
const UDP = 17;

test('well-known ports have their IANA service names without /etc/services', () => {
  assert.equal(serviceName(TCP, 443), 'https');
  assert.equal(serviceName(TCP, 22), 'ssh');
  assert.equal(serviceName(UDP, 53), 'domain');
  assert.equal(serviceName(UDP, 4739), 'ipfix');
  assert.equal(serviceName(TCP, 0), undefined);
  assert.equal(serviceName(1, 80), undefined, 'ICMP has no ports');
});

test('a flow is named by its ICMP type, else its destination port, else its source port', () => {
  const flow = { proto: TCP, srcPort: 51_000, dstPort: 443, icmpType: 0, icmpCode: 0 };
  assert.equal(flowServiceName(flow), 'https');
  assert.equal(flowServiceName({ ...flow, srcPort: 443, dstPort: 51_000 }), 'https');
  assert.equal(flowServiceName({ ...flow, srcPort: 60_001, dstPort: 60_002 }), '');
  assert.equal(
    flowServiceName({ proto: 1, srcPort: 0, dstPort: 0, icmpType: 3, icmpCode: 3 }),
    'port-unreachable',
  );
});
