/**
 * flowtap against tshark on a capture of every link type flowtap reads beyond Ethernet and Linux
 * cooked (test/capture/pcap/link-frames.ts): per-conversation packets and bytes equal tshark's
 * conversation tables, less the link bytes flowtap does not count. Needs tshark, not root.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { runCli } from '../../helpers/cli.ts';
import { PACKET_VECTORS } from '../../vectors/packets.ts';
import { classicPcap, PcapngWriter } from './capture-files.ts';
import { LINK_CASES } from './link-frames.ts';
import { assertSameConversations, type JsonFlow, tsharkConversations } from './tshark-conversations.ts';

const T0 = 1_700_000_000;
/** Flows of both families and three transports, each repeated a different number of times. */
const FLOW_VECTORS = [
  'ipv4 tcp syn with dscp EF',
  'ipv4 tcp with NS, CWR, ECE and ACK flags',
  'ipv4 udp with payload',
  'ipv4 icmp echo request',
  'ipv6 tcp with traffic class AF41',
  'ipv6 udp',
  'ipv6 icmpv6 echo request',
].map((name) => {
  const vector = PACKET_VECTORS.find((v) => v.name === name);
  assert.ok(vector, name);
  return Buffer.from(vector.frame, 'hex');
});
const TSHARK = spawnSync('tshark', ['--version']).status === 0;

describe('flowtap read agrees with tshark on every link type it reads', {
  skip: !TSHARK && 'needs tshark',
}, () => {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-link-types-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const c of LINK_CASES) {
    for (const format of ['pcap', 'pcapng'] as const) {
      test(`per-conversation packets and bytes equal tshark's on a ${c.name} ${format} capture`, async () => {
        const ethernet = FLOW_VECTORS.filter((e) =>
          c.versions.includes(e.readUInt16BE(12) === 0x0800 ? 4 : 6),
        ).flatMap((e, i) => Array.from({ length: i + 1 }, () => e));
        const frames = ethernet.map((e) => c.wrap(e));
        const extra = new Set(
          frames.map((f, i) => f.length - (ethernet[i].length - (c.ethernetLike ? 0 : 14))),
        );
        assert.equal(extra.size, 1, 'every frame of a case has the same link bytes');
        const file = join(dir, `${c.name}.${format}`);
        if (format === 'pcap') {
          writeFileSync(
            file,
            classicPcap(
              frames.map((frame, i) => ({ frame, seconds: T0 + i, fraction: 0 })),
              { linkType: c.linkType },
            ),
          );
        } else {
          const writer = new PcapngWriter().section().iface({ linkType: c.linkType });
          for (const [i, frame] of frames.entries()) writer.epb(0, BigInt(T0 + i) * 1_000_000n, frame);
          writeFileSync(file, writer.toBuffer());
        }
        const { code, stdout, stderr } = await runCli(['read', file]);
        assert.equal(code, 0, stderr);
        assert.doesNotMatch(stderr, /skipped/);
        const flows = stdout
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line) as JsonFlow);
        const tables = await tsharkConversations(file);
        let frameCount = 0;
        for (const kind of ['ip', 'ipv6', 'tcp', 'udp'] as const) {
          const compared = assertSameConversations(tables[kind], flows, kind, [...extra][0]);
          if (kind === 'ip' || kind === 'ipv6') frameCount += compared;
        }
        assert.equal(frameCount, frames.length, 'tshark read every frame as IP');
      });
    }
  }
});
