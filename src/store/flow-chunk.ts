/**
 * Rows of a RecordBatch → one DuckDB data chunk, read in place. Fixed-width fields are copied
 * word by word from the v2 rows into one typed array per column and handed to DuckDB with a
 * single copy per column (addresses as two big-endian halves each); only the interface name,
 * the one variable-width cell of a row, costs a call into DuckDB. `@duckdb/node-api` wraps chunks in value
 * objects per cell, so this module talks to its binding layer (`@duckdb/node-bindings`, the same
 * version, installed with it) for the raw vectors.
 */

import type { DuckDBAppender } from '@duckdb/node-api';
import { DuckDBDataChunk } from '@duckdb/node-api';
import duckdb from '@duckdb/node-bindings';
import { crossedText } from '../codec/identity-text.ts';
import { type RecordBatch, rowDnsName } from '../codec/record-batch.ts';
import { DnsFlag, HealthFlag, V2, V2_RECORD_BYTES } from '../codec/v2-layout.ts';
import { COLUMN, STORE_COLUMNS } from './schema.ts';

/** Rows in one DuckDB chunk (DuckDB's vector size, 2048). */
export const CHUNK_ROWS = duckdb.vector_size();

const ROW_WORDS = V2_RECORD_BYTES / 4;
const ROW_HALVES = V2_RECORD_BYTES / 2;

/** Fills and appends chunks of flow rows; one per appender, reused for every chunk. */
export class FlowChunkWriter {
  readonly #chunk: DuckDBDataChunk;
  /** Rows copied here first, so the typed views below are aligned whatever the batch's offset. */
  readonly #rows = new Uint8Array(CHUNK_ROWS * V2_RECORD_BYTES);
  readonly #rowWords = new Uint32Array(this.#rows.buffer);
  readonly #rowBuffer = Buffer.from(this.#rows.buffer);
  readonly #rowHalves = new Uint16Array(this.#rows.buffer);
  readonly #u64 = STORE_COLUMNS.map(() => new Uint32Array(CHUNK_ROWS * 2));
  readonly #u32 = new Uint32Array(CHUNK_ROWS);
  readonly #u16 = STORE_COLUMNS.map(() => new Uint16Array(CHUNK_ROWS));
  readonly #u8 = STORE_COLUMNS.map(() => new Uint8Array(CHUNK_ROWS));

  constructor(appender: DuckDBAppender) {
    const types = Array.from({ length: appender.columnCount }, (_, i) => appender.columnType(i));
    this.#chunk = DuckDBDataChunk.create(types);
  }

  /** Appends rows `from` (inclusive) to `to` (exclusive) of `batch`, at most CHUNK_ROWS of them. */
  append(appender: DuckDBAppender, batch: RecordBatch, from: number, to: number): void {
    const n = to - from;
    this.#rows.set(batch.bytes.subarray(from * V2_RECORD_BYTES, to * V2_RECORD_BYTES));
    const chunk = this.#chunk;
    chunk.reset();
    chunk.rowCount = n;
    const raw = chunk.chunk;
    this.#copy64(raw, COLUMN.time_start, V2.FIRST_SEEN_NS, n);
    this.#copy64(raw, COLUMN.time_end, V2.LAST_SEEN_NS, n);
    this.#copy64(raw, COLUMN.bytes, V2.BYTES, n);
    this.#copy64(raw, COLUMN.packets, V2.PACKETS, n);
    this.#copy16(raw, COLUMN.etype, V2.ETH_PROTOCOL, n);
    this.#copy16(raw, COLUMN.src_port, V2.SRC_PORT, n);
    this.#copy16(raw, COLUMN.dst_port, V2.DST_PORT, n);
    this.#copy16(raw, COLUMN.tcp_flags, V2.TCP_FLAGS, n);
    this.#copy8(raw, COLUMN.direction, V2.DIRECTION, n);
    this.#copy8(raw, COLUMN.proto, V2.TRANSPORT_PROTOCOL, n);
    this.#copy8(raw, COLUMN.icmp_type, V2.ICMP_TYPE, n);
    this.#copy8(raw, COLUMN.icmp_code, V2.ICMP_CODE, n);
    this.#copy8(raw, COLUMN.dscp, V2.DSCP, n);
    this.#copyMac(raw, COLUMN.src_mac, V2.SRC_MAC, n);
    this.#copyMac(raw, COLUMN.dst_mac, V2.DST_MAC, n);
    this.#copyAddressHalf(raw, COLUMN.src_ip_hi, V2.SRC_ADDR, n);
    this.#copyAddressHalf(raw, COLUMN.src_ip_lo, V2.SRC_ADDR + 8, n);
    this.#copyAddressHalf(raw, COLUMN.dst_ip_hi, V2.DST_ADDR, n);
    this.#copyAddressHalf(raw, COLUMN.dst_ip_lo, V2.DST_ADDR + 8, n);
    this.#copyInterfaces(raw, batch, n);
    this.#copyAddressHalf(raw, COLUMN.agent_ip_hi, V2.AGENT_IP, n);
    this.#copyAddressHalf(raw, COLUMN.agent_ip_lo, V2.AGENT_IP + 8, n);
    this.#copy16(raw, COLUMN.vlan_outer, V2.VLAN_OUTER, n);
    this.#copy16(raw, COLUMN.vlan_inner, V2.VLAN_INNER, n);
    this.#copy8(raw, COLUMN.tunnel_type, V2.TUNNEL_TYPE, n);
    this.#copy32(raw, COLUMN.tunnel_id, V2.TUNNEL_ID, n);
    this.#copyAddressHalf(raw, COLUMN.tunnel_src_hi, V2.TUNNEL_SRC, n);
    this.#copyAddressHalf(raw, COLUMN.tunnel_src_lo, V2.TUNNEL_SRC + 8, n);
    this.#copyAddressHalf(raw, COLUMN.tunnel_dst_hi, V2.TUNNEL_DST, n);
    this.#copyAddressHalf(raw, COLUMN.tunnel_dst_lo, V2.TUNNEL_DST + 8, n);
    this.#copyCrossed(raw, batch, n);
    this.#copy8(raw, COLUMN.record_flags, V2.RECORD_FLAGS, n);
    this.#copy64(raw, COLUMN.rev_bytes, V2.REV_BYTES, n);
    this.#copy64(raw, COLUMN.rev_packets, V2.REV_PACKETS, n);
    this.#copy64(raw, COLUMN.rev_time_start, V2.REV_FIRST_SEEN_NS, n);
    this.#copy64(raw, COLUMN.rev_time_end, V2.REV_LAST_SEEN_NS, n);
    this.#copy16(raw, COLUMN.rev_tcp_flags, V2.REV_TCP_FLAGS, n);
    this.#copy8(raw, COLUMN.rev_dscp, V2.REV_DSCP, n);
    this.#copyHealth(raw, n);
    this.#copyDns(raw, n);
    appender.appendDataChunk(chunk);
  }

  /**
   * The DNS section (schema 5): counts, errno and the parts-present flags as they are; id and flags
   * only with a header, the latency only when measured, the name only when read ('' otherwise).
   */
  #copyDns(raw: duckdb.DataChunk, n: number): void {
    this.#copy32(raw, COLUMN.dns_queries, V2.DNS_QUERIES, n);
    this.#copy32(raw, COLUMN.dns_answers, V2.DNS_ANSWERS, n);
    this.#copy32(raw, COLUMN.dns_unanswered, V2.DNS_UNANSWERED, n);
    this.#copy32(raw, COLUMN.dns_malformed, V2.DNS_MALFORMED, n);
    this.#copy8(raw, COLUMN.dns_errno, V2.DNS_ERRNO, n);
    this.#copy8(raw, COLUMN.dns_record_flags, V2.DNS_RECORD_FLAGS, n);
    this.#copy64If(raw, COLUMN.dns_latency_ns, V2.DNS_LATENCY_NS, n, DnsFlag.LATENCY, V2.DNS_RECORD_FLAGS);
    const ids = this.#u16[COLUMN.dns_id];
    const flags = this.#u16[COLUMN.dns_flags];
    const names = duckdb.data_chunk_get_vector(raw, COLUMN.dns_name);
    const b = this.#rows;
    for (let i = 0, o = 0; i < n; i++, o += V2_RECORD_BYTES) {
      const parts = b[o + V2.DNS_RECORD_FLAGS];
      const header = (parts & DnsFlag.HEADER) !== 0;
      ids[i] = header ? this.#rowHalves[(o + V2.DNS_ID) / 2] : 0;
      flags[i] = header ? this.#rowHalves[(o + V2.DNS_FLAGS) / 2] : 0;
      const name = (parts & DnsFlag.NAME) !== 0 ? rowDnsName(this.#rowBuffer, o) : '';
      duckdb.vector_assign_string_element(names, i, name);
    }
    this.#put(raw, COLUMN.dns_id, ids, n * 2);
    this.#put(raw, COLUMN.dns_flags, flags, n * 2);
  }

  /**
   * The health section (schema 4): counters as they are, RTTs and the handshake time only when
   * measured (0 otherwise), the latest drop's fields only with drops, as the columns say.
   */
  #copyHealth(raw: duckdb.DataChunk, n: number): void {
    this.#copy64(raw, COLUMN.drop_bytes, V2.DROP_BYTES, n);
    this.#copy64(raw, COLUMN.drop_packets, V2.DROP_PACKETS, n);
    this.#copy64(raw, COLUMN.retrans_bytes, V2.RETRANS_BYTES, n);
    this.#copy64(raw, COLUMN.retrans_packets, V2.RETRANS_PACKETS, n);
    this.#copy64If(raw, COLUMN.rtt_last_ns, V2.RTT_LAST_NS, n, HealthFlag.RTT);
    this.#copy64If(raw, COLUMN.rtt_min_ns, V2.RTT_MIN_NS, n, HealthFlag.RTT);
    this.#copy64If(raw, COLUMN.rtt_max_ns, V2.RTT_MAX_NS, n, HealthFlag.RTT);
    this.#copy64If(raw, COLUMN.handshake_rtt_ns, V2.HANDSHAKE_RTT_NS, n, HealthFlag.HANDSHAKE);
    const words = this.#rowWords;
    const causes = this.#u32;
    const flags = this.#u16[COLUMN.drop_latest_flags];
    const states = this.#u8[COLUMN.drop_latest_state];
    for (let i = 0, o = 0; i < n; i++, o += V2_RECORD_BYTES) {
      const dropped = (words[(o + V2.DROP_PACKETS) / 4] | words[(o + V2.DROP_PACKETS) / 4 + 1]) !== 0;
      causes[i] = dropped ? words[(o + V2.DROP_LATEST_CAUSE) / 4] : 0;
      flags[i] = dropped ? this.#rowHalves[(o + V2.DROP_LATEST_FLAGS) / 2] : 0;
      states[i] = dropped ? this.#rows[o + V2.DROP_LATEST_STATE] : 0;
    }
    this.#put(raw, COLUMN.drop_latest_cause, causes, n * 4);
    this.#put(raw, COLUMN.drop_latest_flags, flags, n * 2);
    this.#put(raw, COLUMN.drop_latest_state, states, n);
  }

  /** As #copy64, writing 0 for rows whose flags byte at `flagsAt` (health flags by default) lacks `flag`. */
  #copy64If(
    raw: duckdb.DataChunk,
    column: number,
    offset: number,
    n: number,
    flag: number,
    flagsAt: number = V2.HEALTH_FLAGS,
  ): void {
    const out = this.#u64[column];
    const rows = this.#rowWords;
    const b = this.#rows;
    for (let i = 0, w = offset / 4, f = flagsAt; i < n; i++, w += ROW_WORDS, f += V2_RECORD_BYTES) {
      const measured = (b[f] & flag) !== 0;
      out[2 * i] = measured ? rows[w] : 0;
      out[2 * i + 1] = measured ? rows[w + 1] : 0;
    }
    this.#put(raw, column, out, n * 8);
  }

  #put(raw: duckdb.DataChunk, column: number, data: ArrayBufferView, byteCount: number): void {
    const vector = duckdb.data_chunk_get_vector(raw, column);
    duckdb.copy_data_to_vector(vector, 0, data.buffer as ArrayBuffer, data.byteOffset, byteCount);
  }

  #copy64(raw: duckdb.DataChunk, column: number, offset: number, n: number): void {
    const out = this.#u64[column];
    const rows = this.#rowWords;
    for (let i = 0, w = offset / 4; i < n; i++, w += ROW_WORDS) {
      out[2 * i] = rows[w];
      out[2 * i + 1] = rows[w + 1];
    }
    this.#put(raw, column, out, n * 8);
  }

  #copy32(raw: duckdb.DataChunk, column: number, offset: number, n: number): void {
    const out = this.#u32;
    const rows = this.#rowWords;
    for (let i = 0, w = offset / 4; i < n; i++, w += ROW_WORDS) out[i] = rows[w];
    this.#put(raw, column, out, n * 4);
  }

  #copy16(raw: duckdb.DataChunk, column: number, offset: number, n: number): void {
    const out = this.#u16[column];
    const rows = this.#rowHalves;
    for (let i = 0, h = offset / 2; i < n; i++, h += ROW_HALVES) out[i] = rows[h];
    this.#put(raw, column, out, n * 2);
  }

  #copy8(raw: duckdb.DataChunk, column: number, offset: number, n: number): void {
    const out = this.#u8[column];
    const rows = this.#rows;
    for (let i = 0, o = offset; i < n; i++, o += V2_RECORD_BYTES) out[i] = rows[o];
    this.#put(raw, column, out, n);
  }

  /** A MAC in wire order as the number 0x112233445566, as a little-endian u64. */
  #copyMac(raw: duckdb.DataChunk, column: number, offset: number, n: number): void {
    const out = this.#u64[column];
    const b = this.#rows;
    for (let i = 0, o = offset; i < n; i++, o += V2_RECORD_BYTES) {
      out[2 * i] = ((b[o + 2] << 24) | (b[o + 3] << 16) | (b[o + 4] << 8) | b[o + 5]) >>> 0;
      out[2 * i + 1] = (b[o] << 8) | b[o + 1];
    }
    this.#put(raw, column, out, n * 8);
  }

  /** 8 address bytes in network order as the number they spell, as a little-endian u64. */
  #copyAddressHalf(raw: duckdb.DataChunk, column: number, offset: number, n: number): void {
    const out = this.#u64[column];
    const b = this.#rows;
    for (let i = 0, o = offset; i < n; i++, o += V2_RECORD_BYTES) {
      out[2 * i] = ((b[o + 4] << 24) | (b[o + 5] << 16) | (b[o + 6] << 8) | b[o + 7]) >>> 0;
      out[2 * i + 1] = ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
    }
    this.#put(raw, column, out, n * 8);
  }

  /** The interfaces-crossed list as text (`crossedText`), '' for rows without one. */
  #copyCrossed(raw: duckdb.DataChunk, batch: RecordBatch, n: number): void {
    const cells = duckdb.data_chunk_get_vector(raw, COLUMN.crossed);
    for (let i = 0, o = 0; i < n; i++, o += V2_RECORD_BYTES) {
      duckdb.vector_assign_string_element(cells, i, crossedText(this.#rowBuffer, o, batch.interfaces));
    }
  }

  /** Interface index and name. */
  #copyInterfaces(raw: duckdb.DataChunk, batch: RecordBatch, n: number): void {
    const names = duckdb.data_chunk_get_vector(raw, COLUMN.interface);
    const ifIndexes = this.#u32;
    const words = this.#rowWords;
    let lastIndex = -1;
    let lastName = '';
    for (let i = 0, o = 0; i < n; i++, o += V2_RECORD_BYTES) {
      const ifIndex = words[(o + V2.IF_INDEX) / 4];
      ifIndexes[i] = ifIndex;
      if (ifIndex !== lastIndex) {
        lastIndex = ifIndex;
        lastName = batch.interfaces.nameOf(ifIndex);
      }
      duckdb.vector_assign_string_element(names, i, lastName);
    }
    this.#put(raw, COLUMN.if_index, ifIndexes, n * 4);
  }
}
