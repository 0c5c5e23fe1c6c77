/**
 * A push-style reader of pcap and pcapng byte streams (files of any size, pipes such as
 * `tcpdump -w -`): chunks in, EventBatches of one flow event (key and metrics) per packet out. Records are parsed in
 * place in the chunk; only a record split across two chunks is copied, into one carry buffer the
 * decoder owns and reuses (it grows to the largest record met: ≤ 16 MiB for pcapng, ≤ 256 KiB for
 * pcap). A chunk is not referenced after `push` returns, so the caller may refill it.
 *
 * Several inputs of one capture (the rotated files of `tcpdump -C/-G`, read in time order) go
 * through one decoder: `nextInput()` between them, so they form one stream of rows.
 */
import type { EventBatch } from '../../codec/event-batch.ts';
import { CaptureFormatError } from '../../errors.ts';
import type { FilterProgram } from '../../filter/program.ts';
import type { DnsTracker } from '../dns/dns-tracker.ts';
import { ClassicPcapFramer, isClassicPcapMagic } from './classic.ts';
import { type LocalHosts, NO_LOCAL_HOSTS } from './direction.ts';
import { type CaptureStats, PacketSink, SkipReason } from './packet-sink.ts';
import { PcapngFramer, SHB_TYPE } from './pcapng.ts';
import type { TcpHealthOptions } from './tcp-health.ts';

const MAGIC_BYTES = 4;

/** Options of a {@link CaptureDecoder}. */
export interface CaptureDecoderOptions {
  /** What makes a packet's source local (EGRESS); empty: the capture's recorded direction. */
  localHosts?: LocalHosts;
  /** Rows the first batch buffer holds (it grows as needed). */
  initialRows?: number;
  /** Compiled filter (src/filter): packets it rejects are skipped as `filtered`. */
  filter?: FilterProgram;
  /** One flow for a packet seen on several of the capture's interfaces (DEDUPER; default true). */
  dedup?: boolean;
  /** Key tunnelled packets by the packet inside (ENABLE_TUNNELS; default false). */
  tunnels?: boolean;
  /** DNS tracking of the capture (ENABLE_DNS_TRACKING); absent: off. */
  dns?: DnsTracker;
  /** TCP health to measure into the rows (handshake RTT, retransmissions; default none). */
  tcpHealth?: TcpHealthOptions;
}

/** Decodes one capture stream; see the module comment. */
export class CaptureDecoder {
  readonly #sink: PacketSink;
  #framer: ClassicPcapFramer | PcapngFramer | undefined;
  /** The unit (header, record, block) split across chunks: its first `#carryBytes` bytes. */
  #carry = Buffer.alloc(0);
  #carryBytes = 0;
  #needBytes = MAGIC_BYTES;
  /** Stream offset of the first byte not yet decoded. */
  #offset = 0;
  /** The framing error met, thrown again by every later call. */
  #failure: unknown;

  constructor(options: CaptureDecoderOptions = {}) {
    this.#sink = new PacketSink(options.localHosts ?? NO_LOCAL_HOSTS, options.initialRows, {
      filter: options.filter,
      dedup: options.dedup,
      tunnels: options.tunnels,
      dns: options.dns,
      tcpHealth: options.tcpHealth,
    });
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
  push(chunk: Buffer): EventBatch | undefined {
    if (this.#failure !== undefined) throw this.#failure;
    try {
      this.#decode(chunk);
    } catch (err) {
      // The packets before the damage are handed out first; the error comes with the next call.
      this.#failure = err;
      const batch = this.#takeBatch();
      if (batch === undefined) throw err;
      return batch;
    }
    return this.#takeBatch();
  }

  #decode(chunk: Buffer): void {
    let at = 0;
    // Completes a unit begun in an earlier chunk, copying only the bytes it still lacks.
    while (this.#carryBytes > 0 || this.#framer === undefined) {
      const take = Math.min(this.#needBytes - this.#carryBytes, chunk.length - at);
      this.#reserveCarry(this.#needBytes);
      chunk.copy(this.#carry, this.#carryBytes, at, at + take);
      this.#carryBytes += take;
      at += take;
      if (this.#carryBytes < this.#needBytes) return;
      const framer = this.#framer ?? this.#detect(this.#carry);
      const consumed = framer.consume(this.#carry, 0, this.#carryBytes, this.#offset);
      this.#offset += consumed;
      this.#needBytes = framer.needBytes;
      this.#carry.copyWithin(0, consumed, this.#carryBytes);
      this.#carryBytes -= consumed;
    }
    // The rest of the chunk in place; a unit cut by its end waits in the carry buffer.
    const consumed = this.#framer.consume(chunk, at, chunk.length, this.#offset - at);
    this.#needBytes = this.#framer.needBytes;
    this.#offset += consumed - at;
    const left = chunk.length - consumed;
    if (left > 0) {
      this.#reserveCarry(Math.max(left, this.#needBytes));
      chunk.copy(this.#carry, 0, consumed);
      this.#carryBytes = left;
    }
  }

  #reserveCarry(bytes: number): void {
    if (this.#carry.length >= bytes) return;
    const grown = Buffer.alloc(Math.max(bytes, this.#carry.length * 2));
    this.#carry.copy(grown, 0, 0, this.#carryBytes);
    this.#carry = grown;
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
        this.#carryBytes === 0
          ? 'the input is empty'
          : `the input ends inside its header (${this.#carryBytes} bytes)`,
      );
    }
    if (this.#carryBytes > 0) {
      this.#sink.skip(SkipReason.TRUNCATED_END);
      this.#sink.stats.truncatedEndOffset = this.#offset;
      this.#carryBytes = 0;
    }
  }

  /**
   * Starts the next input of the same capture, after `end()` of the one before: it begins with
   * its own file or section header. An interface it declares with the name and link type of one
   * an earlier input declared is that interface, so flows spanning rotated files join.
   */
  nextInput(): void {
    if (this.#failure !== undefined) throw this.#failure;
    this.#framer = undefined;
    this.#carryBytes = 0;
    this.#needBytes = MAGIC_BYTES;
    this.#offset = 0;
    this.#sink.beginInput();
  }

  /**
   * Ends the capture, after `end()` of its last input: what only its end decides (DNS queries
   * never answered) comes as a last batch, or undefined when there is none.
   */
  endCapture(): EventBatch | undefined {
    if (this.#failure !== undefined) throw this.#failure;
    this.#sink.finishCapture();
    return this.#takeBatch();
  }

  /**
   * Gives back the buffer of `batch`, a batch `push` returned that nothing reads any more, so a
   * later batch reuses it (see BatchBuilder's ownership rule). Without it each batch keeps
   * a buffer of its own.
   */
  recycle(batch: EventBatch): void {
    this.#sink.builder.recycle(batch);
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

  #takeBatch(): EventBatch | undefined {
    return this.#sink.builder.count === 0 ? undefined : this.#sink.builder.finish();
  }
}
