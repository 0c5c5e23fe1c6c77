/** `flowtap read` with issue 13's settings: --bidirectional pairs a capture's conversations, --agent-ip stamps them. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCli } from '../../helpers/cli.ts';
import { PACKET_VECTORS } from '../../vectors/packets.ts';
import { PcapngWriter } from './capture-files.ts';

const TCP4 = Buffer.from(PACKET_VECTORS[0].frame, 'hex');
const T0_US = 1_700_000_000n * 1_000_000n;

/** The same frame going the other way: MACs, IPv4 addresses and TCP ports swapped. */
function reversed(frame: Buffer): Buffer {
  const out = Buffer.from(frame);
  const swap = (a: number, b: number, n: number) => {
    const first = Buffer.from(out.subarray(a, a + n));
    out.copy(out, a, b, b + n);
    first.copy(out, b);
  };
  swap(0, 6, 6);
  swap(26, 30, 4);
  swap(34, 36, 2);
  return out;
}

test('read --bidirectional prints one record per conversation with the reverse counters, and the given agent IP', async () => {
  const capture = new PcapngWriter()
    .section()
    .iface({ linkType: 1, name: 'eth7' })
    .epb(0, T0_US, TCP4)
    .epb(0, T0_US + 10n, reversed(TCP4))
    .epb(0, T0_US + 20n, reversed(TCP4))
    .epb(0, T0_US + 30n, TCP4)
    .toBuffer();
  const { code, stdout, stderr } = await runCli(
    ['read', '-', '--bidirectional', '--agent-ip', '192.0.2.44'],
    {
      stdin: capture,
    },
  );
  assert.equal(code, 0, stderr);
  const flows = stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(flows.length, 1);
  const [flow] = flows;
  assert.deepEqual(
    [flow.Packets, flow.Bytes, flow.RevPackets, flow.RevBytes, flow.AgentIP],
    [2, 2 * TCP4.length, 2, 2 * TCP4.length, '192.0.2.44'],
  );
  assert.equal(flow.TimeFlowStart, '2023-11-14T22:13:20Z', 'forward is the first packet seen');
  assert.equal(flow.RevTimeFlowStart, '2023-11-14T22:13:20.00001Z');
});

test('read without --bidirectional keeps the two directions apart', async () => {
  const capture = new PcapngWriter()
    .section()
    .iface({ linkType: 1 })
    .epb(0, T0_US, TCP4)
    .epb(0, T0_US + 10n, reversed(TCP4))
    .toBuffer();
  const { code, stdout, stderr } = await runCli(['read', '-', '--agent-ip', '2001:db8::44'], {
    stdin: capture,
  });
  assert.equal(code, 0, stderr);
  const flows = stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(flows.length, 2);
  for (const flow of flows) {
    assert.equal(flow.RevBytes, undefined);
    assert.equal(flow.AgentIP, '2001:db8::44');
  }
});
