/**
 * Interfaces crossed in `read`: a pcapng of several interfaces holding each packet once per
 * interface it crossed, decoded (CaptureDecoder) and accounted (Accounter) as `flowtap read` does.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Accounter } from '../../../src/account/accounter.ts';
import { LinkType } from '../../../src/capture/packet/link-layers.ts';
import { CaptureDecoder, type CaptureDecoderOptions } from '../../../src/capture/pcap/capture-decoder.ts';
import type { EventBatch } from '../../../src/codec/event-batch.ts';
import type { Flow } from '../../../src/model/flow.ts';
import { formatIp } from '../../../src/model/ip.ts';
import { observedFields, PACKET_VECTORS, TUNNEL_VECTORS } from '../../vectors/packets.ts';
import { classicPcap, PcapngWriter } from './capture-files.ts';

const INBOUND = 1;
const OUTBOUND = 2;
const INGRESS = 0;
const EGRESS = 1;
const T0 = 1_700_000_000_000_000n; // µs ticks
const UDP = Buffer.from(PACKET_VECTORS.find((v) => v.name === 'ipv4 udp with payload')?.frame ?? '', 'hex');

/** Decodes and accounts `capture` into the flows `flowtap read` would write. */
async function readFlows(
  capture: Buffer,
  options: CaptureDecoderOptions = {},
): Promise<{ flows: Flow[]; decoder: CaptureDecoder }> {
  const decoder = new CaptureDecoder(options);
  async function* batches(): AsyncGenerator<EventBatch> {
    const batch = decoder.push(capture);
    decoder.end();
    if (batch) yield batch;
  }
  const accounter = new Accounter({
    maxEntries: 1024,
    evictBufferLen: 4,
    evictTimeoutMs: 60_000,
    activeTimeoutBy: 'record-time',
  });
  const flows: Flow[] = [];
  for await (const batch of accounter.account(batches())) flows.push(...batch.flows());
  return { flows, decoder };
}

/** Three packets, each captured arriving on `a`, arriving on `br`, then leaving by `b`. */
function routedCapture(): Buffer {
  const w = new PcapngWriter().section();
  for (const name of ['a', 'br', 'b']) w.iface({ linkType: LinkType.ETHERNET, name });
  for (let i = 0n; i < 3n; i++) {
    w.epb(0, T0 + i * 1000n, UDP, { flags: INBOUND });
    w.epb(1, T0 + i * 1000n + 10n, UDP, { flags: INBOUND });
    w.epb(2, T0 + i * 1000n + 20n, UDP, { flags: OUTBOUND });
  }
  return w.toBuffer();
}

test('a packet captured on three interfaces of a pcapng is one flow, counted once on the first, listing all three', async () => {
  const { flows, decoder } = await readFlows(routedCapture());
  assert.equal(flows.length, 1);
  const [flow] = flows;
  assert.equal(flow.packets, 3);
  assert.equal(flow.bytes, 3 * UDP.length);
  assert.deepEqual([flow.interface, flow.direction], ['a', INGRESS]);
  assert.deepEqual(flow.crossed, [
    { ifIndex: 0, direction: INGRESS },
    { ifIndex: 1, direction: INGRESS },
    { ifIndex: 2, direction: EGRESS },
  ]);
  assert.equal(decoder.stats.counted, 3);
  assert.equal(decoder.stats.duplicates, 6, 'the copies on br and b');
});

test('with dedup off each interface of a pcapng counts the packet in a flow of its own', async () => {
  const { flows } = await readFlows(routedCapture(), { dedup: false });
  assert.deepEqual(flows.map((f) => [f.interface, f.direction, f.packets, f.crossed]).sort(), [
    ['a', INGRESS, 3, [{ ifIndex: 0, direction: INGRESS }]],
    ['b', EGRESS, 3, [{ ifIndex: 2, direction: EGRESS }]],
    ['br', INGRESS, 3, [{ ifIndex: 1, direction: INGRESS }]],
  ]);
});

test('a capture of tunnelled packets is keyed by the inner packets with --tunnels, by the outer ones without', async () => {
  const vxlan = TUNNEL_VECTORS.find((v) => v.name.startsWith('vxlan (vni 42)'));
  assert.ok(vxlan);
  const frame = Buffer.from(vxlan.frame, 'hex');
  const capture = classicPcap([
    { seconds: 1_700_000_000, fraction: 0, frame },
    { seconds: 1_700_000_000, fraction: 5, frame },
  ]);
  const opened = await readFlows(capture, { tunnels: true });
  assert.equal(opened.flows.length, 1);
  assert.deepEqual(
    [
      formatIp(opened.flows[0].srcAddr, 0, 0x0800),
      opened.flows[0].packets,
      observedFields(opened.flows[0]).tunnel,
    ],
    ['10.1.0.1', 2, { type: 1, id: 42, src: '192.0.2.1', dst: '198.51.100.2' }],
  );
  const outer = await readFlows(capture);
  assert.deepEqual(
    outer.flows.map((f) => [formatIp(f.srcAddr, 0, 0x0800), f.dstPort, f.tunnel]),
    [['192.0.2.1', 4789, undefined]],
  );
});
