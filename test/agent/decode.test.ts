import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { encodeV1, V1_RECORD_BYTES } from '../../src/codec/v1.ts';
import { encodeV2 } from '../../src/codec/v2.ts';
import { V2, V2_RECORD_BYTES } from '../../src/codec/v2-layout.ts';
import { runCli } from '../helpers/cli.ts';
import { makeFlow } from '../helpers/flows.ts';

function v1File(flows: ReturnType<typeof makeFlow>[]): Buffer {
  const buf = Buffer.alloc(flows.length * V1_RECORD_BYTES);
  for (const [i, f] of flows.entries()) encodeV1(f, buf, i * V1_RECORD_BYTES);
  return buf;
}

describe('flowtap decode', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-decode-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('v1 records from stdin accumulate into flows printed as JSON lines', async () => {
    const records = v1File([
      makeFlow({ bytes: 100 }),
      makeFlow({ bytes: 200 }),
      makeFlow({ srcPort: 9, bytes: 50 }),
    ]);
    const { code, stdout, stderr } = await runCli(['decode', '-'], { stdin: records });
    assert.equal(code, 0, stderr);
    const flows = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      flows.map((f) => [f.Transport.SrcPort, f.Bytes, f.Packets]),
      [
        [1234, 300, 2],
        [9, 50, 1],
      ],
    );
    assert.equal(flows[0].Network.SrcAddr, '10.0.0.1');
  });

  test('a v2 file keeps its times, flags and IPv6 addresses', async () => {
    const file = join(dir, 'flows.v2');
    writeFileSync(
      file,
      encodeV2([
        makeFlow({
          etype: 0x86dd,
          srcAddr: '2001:db8::1',
          dstAddr: '2001:db8::2',
          tcpFlags: 2,
          timeFlowStartNs: 5_000_000_000n,
          timeFlowEndNs: 5_000_000_000n,
        }),
        makeFlow({
          etype: 0x86dd,
          srcAddr: '2001:db8::1',
          dstAddr: '2001:db8::2',
          tcpFlags: 16,
          timeFlowStartNs: 6_000_000_000n,
          timeFlowEndNs: 6_500_000_000n,
        }),
      ]),
    );
    const { code, stdout, stderr } = await runCli(['decode', '--layout', 'v2', file]);
    assert.equal(code, 0, stderr);
    const [flow] = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(flow.Network.SrcAddr, '2001:db8::1');
    assert.equal(flow.TimeFlowStart, '1970-01-01T00:00:05Z');
    assert.equal(flow.TimeFlowEnd, '1970-01-01T00:00:06.5Z');
    assert.equal(flow.TcpFlags, 18);
    assert.equal(flow.Packets, 2);
  });

  test('a truncated file prints the flows before the damage, then the offset, and exits 1 without a stack trace', async () => {
    const records = Buffer.concat([v1File([makeFlow(), makeFlow({ srcPort: 2 })]), Buffer.alloc(10)]);
    const { code, stdout, stderr } = await runCli(['decode', '-'], { stdin: records });
    assert.equal(code, 1);
    assert.equal(stdout.trim().split('\n').length, 2);
    assert.match(stderr, /truncated v1 record at byte offset 72/);
    assert.doesNotMatch(stderr, /\n\s+at /);
  });

  test('a missing file is a clear error with exit 1', async () => {
    const { code, stderr } = await runCli(['decode', join(dir, 'nope.bin')]);
    assert.equal(code, 1);
    assert.match(stderr, /cannot read .*nope\.bin/);
    assert.doesNotMatch(stderr, /\n\s+at /);
  });

  test('an unknown layout is a settings error with exit 2', async () => {
    const { code, stderr } = await runCli(['decode', '--layout', 'v9', '-']);
    assert.equal(code, 2);
    assert.match(stderr, /--layout="v9": expected v1 or v2/);
  });

  test('a v1 file whose 11th of 20 records is malformed prints the 10 before it, then the error, exit 1', async () => {
    const records = v1File(Array.from({ length: 20 }, (_, i) => makeFlow({ srcPort: 1000 + i })));
    records[10 * V1_RECORD_BYTES + 2] = 7;
    const { code, stdout, stderr } = await runCli(['decode', '-'], { stdin: records });
    assert.equal(code, 1);
    assert.deepEqual(
      stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).Transport.SrcPort),
      Array.from({ length: 10 }, (_, i) => 1000 + i),
    );
    assert.match(stderr, /field direction at byte offset 362/);
    assert.doesNotMatch(stderr, /\n\s+at /);
  });

  test('records years apart with a 10ms active timeout are decoded, one flow per window', async () => {
    const thirtyYearsNs = 30n * 365n * 86_400n * 1_000_000_000n;
    const at = (ns: bigint) => makeFlow({ timeFlowStartNs: ns, timeFlowEndNs: ns });
    const records = encodeV2([at(1_000_000_000n), at(1_000_000_000n + thirtyYearsNs)]);
    const { code, stdout, stderr } = await runCli(
      ['decode', '--layout', 'v2', '--cache-active-timeout', '10ms', '-'],
      { stdin: records, timeoutMs: 60_000 },
    );
    assert.equal(code, 0, `exit ${code}: ${stderr}`);
    assert.deepEqual(
      stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).TimeFlowEnd),
      ['1970-01-01T00:00:01Z', '1999-12-25T00:00:01Z'],
    );
  });

  test('a 100ns active timeout keeps exact windows at times past 2^53 ns', async () => {
    const base = 2n ** 62n;
    const at = (ns: bigint) => makeFlow({ timeFlowStartNs: ns, timeFlowEndNs: ns });
    const records = encodeV2([at(base), at(base + 99n), at(base + 100n), at(base + 1_000_000n)]);
    const { code, stdout, stderr } = await runCli(
      ['decode', '--layout', 'v2', '--cache-active-timeout', '100ns', '-'],
      { stdin: records, timeoutMs: 60_000 },
    );
    assert.equal(code, 0, `exit ${code}: ${stderr}`);
    assert.deepEqual(
      stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).Packets),
      [2, 1, 1],
    );
  });

  test('an active timeout under 1ns is a settings error naming the flag, exit 2', async () => {
    const { code, stderr } = await runCli(['decode', '--cache-active-timeout', '0.5ns', '-']);
    assert.equal(code, 2);
    assert.match(stderr, /--cache-active-timeout="0\.5ns": expected a Go duration of at least 1ns/);
  });

  test('a v2 record with a bad field names it and its offset', async () => {
    const buf = encodeV2([makeFlow(), makeFlow()]);
    buf[V2_RECORD_BYTES + V2.DIRECTION] = 5;
    const { code, stderr } = await runCli(['decode', '--layout', 'v2', '-'], { stdin: buf });
    assert.equal(code, 1);
    assert.match(stderr, new RegExp(`field direction at byte offset ${V2_RECORD_BYTES + V2.DIRECTION}\\b`));
  });
});
