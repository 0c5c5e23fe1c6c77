/** The `json` exporter: golden lines, writes in pieces, file target, backpressure, stream errors. */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { recordBatchOf } from '../../src/codec/record-batch.ts';
import { ExportError } from '../../src/errors.ts';
import { JsonLinesExporter, LINES_PER_WRITE, openJsonLinesFile } from '../../src/export/json-lines.ts';
import { InterfaceRegistry } from '../../src/model/interfaces.ts';
import { makeFlow } from '../helpers/flows.ts';

const GOLDEN = [
  '{"Etype":2048,"Direction":"EGRESS","DataLink":{"SrcMac":"08:00:27:23:e8:8a","DstMac":"52:54:00:12:35:02"},' +
    '"Network":{"SrcAddr":"10.0.2.15","DstAddr":"10.0.2.2"},"Transport":{"SrcPort":22,"DstPort":51819,"Proto":"TCP"},' +
    '"Bytes":56320,"TimeFlowStart":"2022-03-17T07:42:12.414480074Z","TimeFlowEnd":"2022-03-17T07:42:12.414849771Z",' +
    '"Interface":"eth0","Packets":2}',
  '{"Etype":34525,"Direction":"INGRESS","DataLink":{"SrcMac":"02:00:00:00:00:01","DstMac":"02:00:00:00:00:02"},' +
    '"Network":{"SrcAddr":"fd00::1","DstAddr":"2001:db8::2"},"Transport":{"SrcPort":5353,"DstPort":53,"Proto":"UDP"},' +
    '"Bytes":100,"TimeFlowStart":"2023-11-14T22:13:20Z","TimeFlowEnd":"2023-11-14T22:13:20.5Z",' +
    '"Interface":"","Packets":1,"Dscp":46}',
];

function goldenBatch() {
  const names = new InterfaceRegistry();
  names.set(2, 'eth0');
  return recordBatchOf(
    [
      makeFlow({
        srcMac: '08:00:27:23:e8:8a',
        dstMac: '52:54:00:12:35:02',
        srcAddr: '10.0.2.15',
        dstAddr: '10.0.2.2',
        srcPort: 22,
        dstPort: 51819,
        bytes: 56320,
        packets: 2,
        ifIndex: 2,
        timeFlowStartNs: 1_647_502_932_414_480_074n,
        timeFlowEndNs: 1_647_502_932_414_849_771n,
      }),
      makeFlow({
        etype: 0x86dd,
        direction: 0,
        srcAddr: 'fd00::1',
        dstAddr: '2001:db8::2',
        srcPort: 5353,
        dstPort: 53,
        proto: 17,
        dscp: 46,
        timeFlowEndNs: 1_700_000_000_500_000_000n,
      }),
    ],
    names,
  );
}

/** A stream whose writes complete only once the test opens it (a reader that is not reading yet). */
class HeldWritable extends Writable {
  readonly chunks: string[] = [];
  #held: (() => void)[] | undefined = [];
  constructor() {
    super({ highWaterMark: 16, decodeStrings: false });
  }
  override _write(chunk: Buffer | string, _enc: BufferEncoding, done: (err?: Error) => void): void {
    // Kept as text now: the exporter reuses a chunk's buffer once its write is done.
    this.chunks.push(chunk.toString());
    if (this.#held) this.#held.push(done);
    else done();
  }
  /** Completes the held writes and every later one. */
  open(): void {
    const held = this.#held ?? [];
    this.#held = undefined;
    for (const done of held) done();
  }
}

test('flows print as the reference JSON form, a small batch in one write', async () => {
  const out = new HeldWritable();
  const exporter = new JsonLinesExporter({ out });
  exporter.export(goldenBatch());
  out.open();
  await exporter.stop();
  assert.deepEqual(out.chunks, [`${GOLDEN.join('\n')}\n`]);
});

test('a batch longer than LINES_PER_WRITE is written whole and in order, in pieces of LINES_PER_WRITE lines', async () => {
  const flows = LINES_PER_WRITE * 2 + 3;
  const batch = recordBatchOf(Array.from({ length: flows }, (_, i) => makeFlow({ srcPort: 1000 + i })));
  const out = new HeldWritable();
  const exporter = new JsonLinesExporter({ out });
  exporter.export(batch);
  out.open();
  await exporter.stop();
  assert.deepEqual(
    out.chunks.map((chunk) => chunk.split('\n').length - 1),
    [LINES_PER_WRITE, LINES_PER_WRITE, 3],
  );
  const ports = out.chunks
    .join('')
    .trim()
    .split('\n')
    .map((line) => (JSON.parse(line) as { Transport: { SrcPort: number } }).Transport.SrcPort);
  assert.deepEqual(
    ports,
    Array.from({ length: flows }, (_, i) => 1000 + i),
  );
  assert.equal(exporter.stats.flowsSent, flows);
});

test('a file target receives the lines appended and is closed on stop', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'flowtap-json-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'flows.jsonl');
  const exporter = await openJsonLinesFile(path);
  exporter.export(goldenBatch());
  exporter.export(goldenBatch());
  await exporter.stop();
  assert.equal(await readFile(path, 'utf8'), `${GOLDEN.join('\n')}\n`.repeat(2));
  assert.equal(exporter.stats.flowsSent, 4);
});

test('a file that cannot be opened is an ExportError at start', async () => {
  await assert.rejects(openJsonLinesFile('/nonexistent-dir/flows.jsonl'), ExportError);
});

test('a stream that does not drain holds the next batches in the bounded queue', async () => {
  const out = new HeldWritable();
  const exporter = new JsonLinesExporter({ out, maxQueuedBatches: 2 });
  assert.equal(exporter.export(goldenBatch()), true);
  assert.equal(exporter.export(goldenBatch()), true);
  assert.equal(exporter.export(goldenBatch()), false);
  assert.equal(out.chunks.length, 1, 'the second batch waits until the first is written');
  assert.equal(exporter.stats.flowsDropped['queue-full'], 2);
  const stopped = exporter.stop();
  out.open();
  await stopped;
  assert.equal(out.chunks.length, 2);
  assert.equal(exporter.stats.flowsSent, 4);
});

test('a stream error fails the batch with an ExportError instead of crashing', async () => {
  const out = new Writable({
    highWaterMark: 1,
    write: (_chunk, _enc, done) => done(new Error('EPIPE: reader went away')),
  });
  const failures: Error[] = [];
  const exporter = new JsonLinesExporter({ out, onResult: (r) => r.error && failures.push(r.error) });
  exporter.export(goldenBatch());
  await exporter.stop();
  assert.equal(exporter.stats.flowsFailed, 2);
  assert.ok(failures[0] instanceof ExportError);
  assert.match(failures[0].message, /EPIPE/);
});
