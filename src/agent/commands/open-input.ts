/** The input of the file commands (decode, read): a file, or standard input for `-`. */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';

/** Bytes a file is read in at a time: large reads keep the decoders' batches full. */
export const READ_CHUNK_BYTES = 1 << 20;

/** Opens `file` for reading, or standard input when it is `-`; errors surface when it is read. */
export function openInput(file: string): Readable {
  if (file === '-') return process.stdin;
  return createReadStream(file, { highWaterMark: READ_CHUNK_BYTES });
}
