/**
 * `flowtap decode FILE|-`: reads binary flow records (the reference's v1 layout, or flowtap's v2),
 * accumulates them into flows and prints each evicted flow as a JSON line. For debugging record
 * producers and for benchmarks; bad input ends with a message naming the byte offset and exit 1,
 * after the flows decoded before it are printed.
 */
import type { Readable, Writable } from 'node:stream';
import type { Command } from 'commander';
import { Accounter } from '../../account/accounter.ts';
import type { RecordBatch } from '../../codec/record-batch.ts';
import { type RecordLayout, RecordStreamDecoder } from '../../codec/record-stream.ts';
import { decodeV1Records, V1_RECORD_BYTES } from '../../codec/v1.ts';
import { decodeV2Records } from '../../codec/v2.ts';
import { V2_RECORD_BYTES } from '../../codec/v2-layout.ts';
import { ConfigError } from '../../errors.ts';
import { flowToJson } from '../../model/flow.ts';
import { nowUnixNs } from '../../model/time.ts';
import { openInput } from './open-input.ts';
import { addFileCacheOptions, asInputError } from './option-parsers.ts';

/** Options of {@link decodeRecords}. */
export interface DecodeOptions {
  /** Record layout of the input. */
  layout: 'v1' | 'v2';
  /** Flows cached before the cache is evicted. */
  cacheMaxFlows: number;
  /** Active timeout, applied on the records' own times. */
  cacheActiveTimeoutMs: number;
}

function layoutOf(name: 'v1' | 'v2'): RecordLayout {
  if (name === 'v1') {
    return {
      name,
      recordBytes: V1_RECORD_BYTES,
      decodeRecords: (buf, baseOffset) => decodeV1Records(buf, { readTimeNs: nowUnixNs(), baseOffset }),
    };
  }
  return {
    name,
    recordBytes: V2_RECORD_BYTES,
    decodeRecords: (buf, baseOffset) => decodeV2Records(buf, { baseOffset }),
  };
}

async function* recordBatches(input: Readable, layout: RecordLayout): AsyncGenerator<RecordBatch> {
  const decoder = new RecordStreamDecoder(layout);
  for await (const chunk of input) {
    const batch = decoder.push(chunk as Buffer);
    if (batch) yield batch;
    if (decoder.failure !== undefined) break; // no need to read past the damage
  }
  decoder.end();
}

async function writeWithBackpressure(out: Writable, text: string): Promise<void> {
  if (out.write(text)) return;
  await new Promise<void>((resolve, reject) => {
    const onDrain = () => {
      out.off('error', onError);
      resolve();
    };
    const onError = (err: Error) => {
      out.off('drain', onDrain);
      reject(err);
    };
    out.once('drain', onDrain);
    out.once('error', onError);
  });
}

/** Decodes `input`, accumulates flows and writes them to `out` as JSON lines; returns the flow count. */
export async function decodeRecords(input: Readable, out: Writable, options: DecodeOptions): Promise<number> {
  const accounter = new Accounter({
    maxEntries: options.cacheMaxFlows,
    evictBufferLen: 4,
    evictTimeoutMs: options.cacheActiveTimeoutMs,
    activeTimeoutBy: 'record-time',
  });
  let flows = 0;
  for await (const batch of accounter.account(recordBatches(input, layoutOf(options.layout)))) {
    let text = '';
    for (let i = 0; i < batch.count; i++) text += `${flowToJson(batch.flow(i), batch.interfaces)}\n`;
    flows += batch.count;
    await writeWithBackpressure(out, text);
  }
  return flows;
}

/** Registers `flowtap decode`. */
export function registerDecodeCommand(program: Command): void {
  const command = program
    .command('decode')
    .description(
      'read binary flow records from FILE (or - for stdin) and print the accumulated flows as JSON lines',
    )
    .argument('<file>', 'file of records, or - for standard input')
    .option(
      '--layout <layout>',
      `record layout: v1 (the reference, 36 bytes) or v2 (flowtap, ${V2_RECORD_BYTES} bytes)`,
      'v1',
    );
  addFileCacheOptions(command, 'records').action(
    async (file: string, opts: { layout: string; cacheMaxFlows: number; cacheActiveTimeout: number }) => {
      if (opts.layout !== 'v1' && opts.layout !== 'v2')
        throw new ConfigError('--layout', opts.layout, 'v1 or v2');
      const input = openInput(file);
      try {
        await decodeRecords(input, process.stdout, {
          layout: opts.layout,
          cacheMaxFlows: opts.cacheMaxFlows,
          cacheActiveTimeoutMs: opts.cacheActiveTimeout,
        });
      } catch (err) {
        throw asInputError(err, file);
      }
    },
  );
}
