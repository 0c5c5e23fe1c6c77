/**
 * A push-style reader of pcap and pcapng byte streams (files of any size, pipes such as
 * `tcpdump -w -`): chunks in, RecordBatches of one v2 row per packet out. Memory stays bounded:
 * besides the batch of the current chunk it keeps at most the one record or block split across
 * chunks (≤ 16 MiB for pcapng, ≤ 256 KiB for pcap), and collects its pieces without re-copying.
 */
import type { RecordBatch } from '../../codec/record-batch.ts';
import { CaptureFormatError } from '../../errors.ts';
import type { FilterProgram } from '../../filter/program.ts';
import { ClassicPcapFramer, isClassicPcapMagic } from './classic.ts';
import { type LocalHosts, NO_LOCAL_HOSTS } from './direction.ts';
import { type CaptureStats, PacketSink, SkipReason } from './packet-sink.ts';
import { PcapngFramer, SHB_TYPE } from './pcapng.ts';

const MAGIC_BYTES = 4;

/** Options of a {@link CaptureDecoder}. */
export interface CaptureDecoderOptions {
  /** What makes a packet's source local (EGRESS); empty: the capture's recorded direction. */
  localHosts?: LocalHosts;
  /** Rows the first batch buffer holds (it grows as needed). */
  initialRows?: number;
  /** Compiled filter (src/filter): packets it rejects are skipped as `filtered`. */
  filter?: FilterProgram;
}

/** Decodes one capture stream; see the module comment. */
export class CaptureDecoder {
  readonly #sink: PacketSink;
  #framer: ClassicPcapFramer | PcapngFramer | undefined;
  /** Unconsumed bytes: pieces of the record split across chunks, and their total. */
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #needBytes = MAGIC_BYTES;
  /** Stream offset of the first pending byte. */
  #offset = 0;
  /** The framing error met, thrown again by every later call. */
  #failure: unknown;

  constructor(options: CaptureDecoderOptions = {}) {
    this.#sink = new PacketSink(options.localHosts ?? NO_LOCAL_HOSTS, options.initialRows, options.filter);
  }

  /** Counters of this read so far. */
  get stats(): CaptureStats {
    return this.#sink.stats;
  }

  /** Stream offset of the first byte not yet decoded. */
  get offset(): number {
    return this.#offset;
  }

  /**
   * Decodes the whole records now available; returns the rows of the packets counted, or
   * undefined when none was. Where the framing breaks it throws `CaptureFormatError`: at once
   * when no packet came before the damage, else on the next call, after returning those rows.
   */
  push(chunk: Buffer): RecordBatch | undefined {
    if (this.#failure !== undefined) throw this.#failure;
    if (chunk.length === 0) return undefined;
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    if (this.#pendingBytes < this.#needBytes) return undefined;
    const data =
      this.#pending.length === 1 ? this.#pending[0] : Buffer.concat(this.#pending, this.#pendingBytes);
    const framer = this.#framer ?? this.#detect(data);
    let consumed: number;
    try {
      consumed = framer.consume(data, 0, this.#offset);
    } catch (err) {
      // The packets before the damage are handed out first; the error comes with the next call.
      this.#failure = err;
      const batch = this.#takeBatch();
      if (batch === undefined) throw err;
      return batch;
    }
    this.#needBytes = framer.needBytes;
    this.#offset += consumed;
    this.#pendingBytes = data.length - consumed;
    this.#pending = this.#pendingBytes === 0 ? [] : [data.subarray(consumed)];
    return this.#takeBatch();
  }

  /**
   * Ends the stream. Bytes left over are a record cut short (`truncated-end`, counted with its
   * offset); an input that ends before its file or first section header is complete is a
   * `CaptureFormatError`.
   */
  end(): void {
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#framer === undefined || this.#offset === 0) {
      throw new CaptureFormatError(
        0,
        this.#sink.stats.format || 'capture',
        this.#pendingBytes === 0
          ? 'the input is empty'
          : `the input ends inside its header (${this.#pendingBytes} bytes)`,
      );
    }
    if (this.#pendingBytes > 0) {
      this.#sink.skip(SkipReason.TRUNCATED_END);
      this.#sink.stats.truncatedEndOffset = this.#offset;
      this.#pending = [];
      this.#pendingBytes = 0;
    }
  }

  #detect(data: Buffer): ClassicPcapFramer | PcapngFramer {
    const magic = data.readUInt32LE(0);
    if (magic === SHB_TYPE) this.#framer = new PcapngFramer(this.#sink);
    else if (isClassicPcapMagic(magic)) this.#framer = new ClassicPcapFramer(this.#sink);
    else {
      throw new CaptureFormatError(
        0,
        'capture',
        `magic number 0x${magic.toString(16).padStart(8, '0')} is neither pcap nor pcapng`,
      );
    }
    return this.#framer;
  }

  #takeBatch(): RecordBatch | undefined {
    return this.#sink.builder.count === 0 ? undefined : this.#sink.builder.finish();
  }
}
