/**
 * One capture in several inputs: split, rotated, gzipped or zstd-compressed (named so or not),
 * named by a pattern flowtap expands, in any order of names or arguments. Each gives byte for byte
 * the flows of the same capture read from one uncompressed file.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { CaptureDecoder } from '../../../src/capture/pcap/capture-decoder.ts';
import { CaptureInputs, partitionReadArguments } from '../../../src/capture/pcap/capture-inputs.ts';
import { READ_CHUNK_BYTES } from '../../../src/capture/pcap/input-stream.ts';
import { V2_EVENT_BYTES } from '../../../src/codec/v2-layout.ts';
import { InputError } from '../../../src/errors.ts';
import { runCli } from '../../helpers/cli.ts';
import { PACKET_VECTORS } from '../../vectors/packets.ts';
import { type ClassicPacket, classicPcap, PcapngWriter } from './capture-files.ts';

const T0 = 1_700_000_000;
const PACKETS = 600;
const FLOWS = 25;

/** Packets of 25 TCP flows over 40 s, so flows span the 5 s active timeout and the file splits. */
const packets: ClassicPacket[] = Array.from({ length: PACKETS }, (_, i) => {
  const frame = Buffer.from(PACKET_VECTORS[0].frame, 'hex');
  frame.writeUInt16BE(10_000 + ((i * 7) % FLOWS), 34);
  return { frame, seconds: T0 + Math.floor(i / 15), fraction: (i * 1237) % 1_000_000 };
});

/** `data` compressed by the zstd tool (Debian's `zstd`), as `zstd -c` writes it. */
function zstd(data: Buffer, level = 3): Buffer {
  const run = spawnSync('zstd', [`-${level}`, '-q', '-c'], { input: data, maxBuffer: 1 << 26 });
  if (run.error || run.status !== 0) throw new Error(`zstd failed: ${run.error ?? run.stderr}`);
  return run.stdout;
}

function pcapng(part: readonly ClassicPacket[]): Buffer {
  const writer = new PcapngWriter().section().iface({ linkType: 1, name: 'eth0' });
  for (const p of part) writer.epb(0, BigInt(p.seconds) * 1_000_000n + BigInt(p.fraction), p.frame);
  return writer.toBuffer();
}

async function flows(args: string[], stdin?: Buffer): Promise<string> {
  const { code, stdout, stderr } = await runCli(['read', ...args], { stdin });
  assert.equal(code, 0, stderr);
  assert.match(stderr, new RegExp(`${PACKETS} packets read, ${PACKETS} counted`));
  return stdout;
}

describe('flowtap read of several inputs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-inputs-'));
  const file = (name: string) => join(dir, name);
  after(() => rmSync(dir, { recursive: true, force: true }));
  const thirds = [packets.slice(0, 200), packets.slice(200, 400), packets.slice(400)];
  writeFileSync(file('whole.pcap'), classicPcap(packets));
  writeFileSync(file('whole.pcapng'), pcapng(packets));
  // Names sort against time: rot-c holds the first third, rot-a the second, rot-b the last.
  writeFileSync(file('rot-c.pcap'), classicPcap(thirds[0]));
  writeFileSync(file('rot-a.pcap.gz'), gzipSync(classicPcap(thirds[1])));
  writeFileSync(file('rot-b'), gzipSync(classicPcap(thirds[2])));
  writeFileSync(file('ng-1.pcapng.gz'), gzipSync(pcapng(thirds[0])));
  writeFileSync(file('ng-2.pcapng'), pcapng(thirds[1]));
  writeFileSync(file('ng-3.pcapng.gz'), gzipSync(pcapng(thirds[2])));
  writeFileSync(file('z-1.pcap.zst'), zstd(classicPcap(thirds[0])));
  writeFileSync(file('z-2'), zstd(classicPcap(thirds[1]), 19));
  writeFileSync(file('z-3.pcap.gz'), gzipSync(classicPcap(thirds[2])));

  test('a gzipped capture gives the same flows as the uncompressed one', async () => {
    writeFileSync(file('whole.pcap.gz'), gzipSync(classicPcap(packets)));
    const expected = await flows([file('whole.pcap')]);
    assert.ok(expected.split('\n').length > FLOWS, 'flows span the active timeout');
    assert.equal(await flows([file('whole.pcap.gz')]), expected);
    assert.equal(await flows(['-'], gzipSync(classicPcap(packets))), expected);
  });

  test('a quoted pattern reads the rotated files in time order as one capture', async () => {
    assert.equal(await flows([join(dir, 'rot-*')]), await flows([file('whole.pcap')]));
  });

  test('files named one by one, in any order, are read in time order as one capture', async () => {
    const expected = await flows([file('whole.pcap')]);
    assert.equal(await flows([file('rot-b'), file('rot-c.pcap'), file('rot-a.pcap.gz')]), expected);
  });

  test('rotated pcapng files, some gzipped, give the flows of the whole pcapng file', async () => {
    assert.equal(await flows([join(dir, 'ng-?.pcapng*')]), await flows([file('whole.pcapng')]));
  });

  test('a damaged gzip stream is an input error naming the file', async () => {
    const gz = gzipSync(classicPcap(packets));
    writeFileSync(file('cut.pcap.gz'), gz.subarray(0, gz.length - 100));
    const { code, stderr } = await runCli(['read', file('cut.pcap.gz')]);
    assert.equal(code, 1);
    assert.match(stderr, /cannot gunzip .*cut\.pcap\.gz: unexpected end of file/);
  });

  test('a zstd-compressed capture gives the same flows as the uncompressed one, from a file or -', async () => {
    writeFileSync(file('whole.pcapng.zst'), zstd(pcapng(packets)));
    const expected = await flows([file('whole.pcapng')]);
    assert.equal(await flows([file('whole.pcapng.zst')]), expected);
    assert.equal(await flows(['-'], zstd(pcapng(packets))), expected);
    // Two frames one after the other (`zstd` of two parts, concatenated) are one stream.
    const capture = classicPcap(packets);
    const split = Buffer.concat([zstd(capture.subarray(0, 5000)), zstd(capture.subarray(5000))]);
    assert.equal(await flows(['-'], split), await flows([file('whole.pcap')]));
  });

  test('rotated files compressed with zstd, gzip or not at all are read as one capture', async () => {
    assert.equal(await flows([join(dir, 'z-*')]), await flows([file('whole.pcap')]));
  });

  test('a damaged zstd stream is an input error naming the file, after the flows before it', async () => {
    const zst = zstd(classicPcap(packets));
    writeFileSync(file('cut.pcap.zst'), zst.subarray(0, zst.length - 100));
    const { code, stderr } = await runCli(['read', file('cut.pcap.zst')]);
    assert.equal(code, 1);
    assert.match(stderr, /cannot decompress .*cut\.pcap\.zst \(zstd\): unexpected EOF/);
    const garbage = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(64, 0xff)]);
    writeFileSync(file('bad.pcap.zst'), garbage);
    const bad = await runCli(['read', file('bad.pcap.zst')]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /cannot decompress .*bad\.pcap\.zst \(zstd\): /);
    assert.doesNotMatch(bad.stderr, /\n\s+at /, 'no stack trace');
  });

  test('an argument that is neither a file nor a pattern matching one is an input error', async () => {
    const { code, stderr } = await runCli(['read', join(dir, 'absent-*.pcap')]);
    assert.equal(code, 1);
    assert.match(stderr, /cannot read .*absent-\*\.pcap: no such file, and no file matches it/);
  });

  test('arguments after the inputs are returned, not read; - is read alone', async () => {
    const { files, rest } = await partitionReadArguments([
      file('whole.pcap'),
      join(dir, 'rot-?'),
      'tcp',
      'port',
    ]);
    assert.deepEqual(files, [file('whole.pcap'), file('rot-b')]);
    assert.deepEqual(rest, ['tcp', 'port']);
    await assert.rejects(partitionReadArguments(['-', file('whole.pcap')]), InputError);
  });

  test('the total size is that of the stored files and the order is by first packet time', async () => {
    const inputs = await CaptureInputs.open([file('rot-b'), file('rot-a.pcap.gz'), file('rot-c.pcap')]);
    assert.deepEqual(inputs.paths, [file('rot-c.pcap'), file('rot-a.pcap.gz'), file('rot-b')]);
    assert.ok(inputs.totalBytes !== undefined && inputs.totalBytes < classicPcap(packets).length);
  });
});

test('rows read in many batches through recycled buffers equal the rows decoded at once', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-recycle-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // IPv6 rows first, then IPv4 rows, which write fewer address bytes: a recycled buffer holding
  // stale IPv6 bytes would show in the IPv4 keys.
  const v6 = Buffer.from(PACKET_VECTORS.find((v) => v.name === 'ipv6 udp')?.frame ?? '', 'hex');
  const v4 = Buffer.from(PACKET_VECTORS[0].frame, 'hex');
  const count = Math.ceil((4 * READ_CHUNK_BYTES) / (16 + v6.length));
  const capture = classicPcap(
    Array.from({ length: count }, (_, i) => ({
      frame: i < count / 2 ? v6 : v4,
      seconds: T0 + Math.floor(i / 1000),
      fraction: i % 1000,
    })),
  );
  const path = join(dir, 'many.pcap');
  writeFileSync(path, capture);

  const once = new CaptureDecoder().push(capture);
  assert.equal(once?.count, count);
  const inputs = await CaptureInputs.open([path]);
  const rows: Buffer[] = [];
  let batches = 0;
  for await (const batch of inputs.batches(new CaptureDecoder())) {
    rows.push(Buffer.from(batch.bytes.subarray(0, batch.count * V2_EVENT_BYTES)));
    batches++;
  }
  assert.ok(batches >= 4, `${batches} batches`);
  assert.ok(Buffer.concat(rows).equals(once.bytes.subarray(0, count * V2_EVENT_BYTES)));
});
