/**
 * tshark's conversation tables (`tshark -q -z conv,KIND`) and flowtap's JSON flows summed the
 * same way, so a test can check flowtap's per-flow packets and bytes against a tool it did not
 * write.
 */
import assert from 'node:assert/strict';
import { run } from '../../net/netns.ts';

/** tshark's conversation table kinds compared. */
export type ConvKind = 'tcp' | 'udp' | 'ip' | 'ipv6';

/** Frames and bytes one way. */
export interface Count {
  frames: number;
  bytes: number;
}

/** One row of a tshark conversation table. */
export interface Conversation {
  a: string;
  b: string;
  aToB: Count;
  bToA: Count;
}

/** The fields of a `flowtap read` JSON line the comparisons use. */
export interface JsonFlow {
  Etype: number;
  Direction: string;
  DataLink: { SrcMac: string; DstMac: string };
  Network: { SrcAddr: string; DstAddr: string };
  Transport: { SrcPort: number; DstPort: number; Proto: string };
  Bytes: number;
  Packets: number;
  IcmpType?: number;
}

const TABLE_TITLES: Record<string, ConvKind> = {
  'IPv4 Conversations': 'ip',
  'IPv6 Conversations': 'ipv6',
  'TCP Conversations': 'tcp',
  'UDP Conversations': 'udp',
};

/** The four conversation tables of `file`, from one tshark run (`-z conv,KIND` for each kind). */
export async function tsharkConversations(file: string): Promise<Record<ConvKind, Conversation[]>> {
  const kinds = Object.values(TABLE_TITLES);
  const text = await run('tshark', ['-r', file, '-q', ...kinds.flatMap((k) => ['-z', `conv,${k}`])]);
  const tables: Record<ConvKind, Conversation[]> = { ip: [], ipv6: [], tcp: [], udp: [] };
  let rows: Conversation[] | undefined;
  for (const line of text.split('\n')) {
    const title = TABLE_TITLES[line.trim()];
    if (title !== undefined) rows = tables[title];
    if (!line.includes('<->')) continue;
    const m = /^(\S+)\s+<->\s+(\S+)\s+(\d+)\s+(\d+) bytes\s+(\d+)\s+(\d+) bytes/.exec(line);
    // tshark prints ≥ 10 000 bytes rounded to kB: the traffic is kept below that.
    assert.ok(m && rows, `unparsed tshark conversation line: ${line}`);
    rows.push({
      a: m[1],
      b: m[2],
      bToA: { frames: Number(m[3]), bytes: Number(m[4]) },
      aToB: { frames: Number(m[5]), bytes: Number(m[6]) },
    });
  }
  return tables;
}

/** flowtap's flows summed one way per conversation endpoint pair, as tshark keys them. */
export function flowtapCounts(flows: JsonFlow[], kind: ConvKind): Map<string, Count> {
  const counts = new Map<string, Count>();
  for (const f of flows) {
    const family = f.Etype === 0x0800 ? 'ip' : f.Etype === 0x86dd ? 'ipv6' : '';
    let key: string;
    if (kind === 'ip' || kind === 'ipv6') {
      if (family !== kind) continue;
      key = `${f.Network.SrcAddr}>${f.Network.DstAddr}`;
    } else {
      if (f.Transport.Proto !== kind.toUpperCase()) continue;
      key = `${f.Network.SrcAddr}:${f.Transport.SrcPort}>${f.Network.DstAddr}:${f.Transport.DstPort}`;
    }
    const c = counts.get(key) ?? { frames: 0, bytes: 0 };
    c.frames += f.Packets;
    c.bytes += f.Bytes;
    counts.set(key, c);
  }
  return counts;
}

/**
 * Asserts that flowtap's `flows` count, per direction of every conversation of tshark's
 * `conversations` table, tshark's frames and its bytes less `extraBytesPerFrame` (link bytes
 * flowtap does not count), and no frame outside them; returns the frames compared.
 */
export function assertSameConversations(
  conversations: readonly Conversation[],
  flows: JsonFlow[],
  kind: ConvKind,
  extraBytesPerFrame: number,
): number {
  const ours = flowtapCounts(flows, kind);
  let tsharkFrames = 0;
  for (const conv of conversations) {
    for (const [from, to, count] of [
      [conv.a, conv.b, conv.aToB],
      [conv.b, conv.a, conv.bToA],
    ] as const) {
      if (count.frames === 0) continue;
      const expected = { frames: count.frames, bytes: count.bytes - extraBytesPerFrame * count.frames };
      assert.deepEqual(ours.get(`${from}>${to}`), expected, `${kind} ${from} -> ${to}`);
      tsharkFrames += count.frames;
    }
  }
  const ourFrames = [...ours.values()].reduce((sum, c) => sum + c.frames, 0);
  assert.equal(ourFrames, tsharkFrames, `${kind}: no packet outside tshark's conversations`);
  return tsharkFrames;
}
