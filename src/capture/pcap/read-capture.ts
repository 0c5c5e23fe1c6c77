/**
 * A capture stream (file, pipe) as the `AsyncIterable<RecordBatch>` every later stage consumes:
 * one batch per chunk read, one v2 row per counted packet, ready for the Accounter in
 * `activeTimeoutBy: 'record-time'` mode.
 */
import type { RecordBatch } from '../../codec/record-batch.ts';
import type { CaptureDecoder } from './capture-decoder.ts';

/**
 * Yields the rows of `input` decoded by `decoder` (whose `stats` hold the counts afterwards).
 * A `CaptureFormatError` ends the iteration after the rows before the damage were yielded.
 */
export async function* readCapture(
  input: AsyncIterable<Buffer | string>,
  decoder: CaptureDecoder,
): AsyncGenerator<RecordBatch> {
  for await (const chunk of input) {
    const batch = decoder.push(typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk);
    if (batch !== undefined) yield batch;
  }
  decoder.end();
}
