/**
 * An IPFIX collector (RFC 7011 §10): UDP datagrams and TCP streams of IPFIX messages from any
 * exporter, decoded (decode.ts) into batches handed to `onBatch`. Over UDP each source address
 * and port is one session; its templates are forgotten after `idleSessionMs` without a message.
 * Over TCP each connection is one session, framed by the messages' length fields; a stream whose
 * framing breaks (not IPFIX, a length below the header) is counted and closed, since nothing
 * after it can be trusted. Rows gather per observation domain and leave at `batchRows` or every
 * `flushIntervalMs`.
 *
 * Backpressure: `pause()` stops reading TCP connections (their exporters' TCP windows fill) and
 * drops UDP datagrams unread, counted as `queue_full` (UDP has no way to slow a sender);
 * `resume()` undoes it. The owner decides when (src/collect/ipfix-source.ts).
 */
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { type AddressInfo, createServer, isIPv6, type Server, type Socket } from 'node:net';
import type { RecordBatch } from '../../codec/record-batch.ts';
import { ListenError } from '../../errors.ts';
import { parseIp } from '../../model/ip.ts';
import { IpfixDecoder, IpfixDrop, type IpfixDropReason } from './decode.ts';
import { ExporterSession } from './exporter-session.ts';
import { IPFIX_VERSION, MESSAGE_HEADER_BYTES } from './templates.ts';

/** How often rows gathered are handed out at least, by default. */
export const DEFAULT_FLUSH_INTERVAL_MS = 100;
/** A UDP exporter silent this long is forgotten with its templates, by default (> 3 template refreshes). */
export const DEFAULT_IDLE_SESSION_MS = 30 * 60_000;
/** UDP exporters (address and port) tracked at most; datagrams of more are dropped. */
export const MAX_UDP_SESSIONS = 10_000;
/** TCP connections accepted at once. */
export const MAX_TCP_CONNECTIONS = 1_000;
/** Kernel receive buffer asked for the UDP socket (the kernel caps it at net.core.rmem_max). */
const UDP_RECEIVE_BUFFER_BYTES = 8 * 1024 * 1024;
/** Drop reason of a datagram read while paused. */
export const QUEUE_FULL = 'queue_full';
/** Drop reason of a datagram from one UDP exporter too many. */
export const TOO_MANY_EXPORTERS = 'too_many_exporters';

/** The transports an IPFIX collector listens on. */
export type IpfixTransport = 'udp' | 'tcp';

/** Settings of {@link startIpfixCollector}. */
export interface IpfixCollectorOptions {
  /** Address to listen on. */
  host: string;
  /** Port of both transports; 0 picks a free one for each. */
  port: number;
  transports: readonly IpfixTransport[];
  /** Takes each batch decoded. */
  onBatch(batch: RecordBatch, transport: IpfixTransport): void;
  /** Counts what was dropped, by transport and reason. */
  onDrop(
    reason: IpfixDropReason | typeof QUEUE_FULL | typeof TOO_MANY_EXPORTERS,
    transport: IpfixTransport,
  ): void;
  /** Told of data records an exporter's sequence numbers say were lost on the way. */
  onMissingRecords?(count: number, transport: IpfixTransport): void;
  /** Told of a TCP connection closed for broken framing. */
  onStreamError?(peer: string, reason: IpfixDropReason): void;
  batchRows?: number;
  flushIntervalMs?: number;
  idleSessionMs?: number;
}

/** A listening collector. */
export interface RunningIpfixCollector {
  /** Ports bound, by transport. */
  readonly ports: Partial<Record<IpfixTransport, number>>;
  /** Stop reading (TCP) or drop what arrives (UDP) until `resume()`. */
  pause(): void;
  resume(): void;
  /** Stops listening, hands out every row gathered; idempotent. */
  close(): Promise<void>;
}

/** The 16 bytes flowtap stores for `address` (IPv4-mapped for IPv4); zeros when unreadable. */
function agentAddress(address: string): Uint8Array {
  return parseIp(address.startsWith('::ffff:') ? address.slice(7) : address) ?? new Uint8Array(16);
}

/** Starts listening on every transport asked; rejects with ListenError when a port is taken. */
export async function startIpfixCollector(options: IpfixCollectorOptions): Promise<RunningIpfixCollector> {
  const collector = new IpfixCollector(options);
  try {
    await collector.listen();
  } catch (err) {
    await collector.close();
    throw err;
  }
  return collector;
}

class IpfixCollector implements RunningIpfixCollector {
  readonly ports: Partial<Record<IpfixTransport, number>> = {};
  readonly #options: IpfixCollectorOptions;
  readonly #decoders: Record<IpfixTransport, IpfixDecoder>;
  readonly #udpSessions = new Map<string, ExporterSession>();
  readonly #tcpSockets = new Set<Socket>();
  #udp: UdpSocket | undefined;
  #tcp: Server | undefined;
  #timer: NodeJS.Timeout | undefined;
  #paused = false;
  #closing: Promise<void> | undefined;

  constructor(options: IpfixCollectorOptions) {
    this.#options = options;
    const decoder = (transport: IpfixTransport) =>
      new IpfixDecoder({
        drop: (reason) => options.onDrop(reason, transport),
        onBatch: (batch) => options.onBatch(batch, transport),
        onMissingRecords: (count) => options.onMissingRecords?.(count, transport),
        batchRows: options.batchRows,
      });
    this.#decoders = { udp: decoder('udp'), tcp: decoder('tcp') };
  }

  async listen(): Promise<void> {
    const { host, port, transports } = this.#options;
    if (transports.includes('udp')) this.ports.udp = await this.#listenUdp(host, port);
    if (transports.includes('tcp')) this.ports.tcp = await this.#listenTcp(host, port);
    const flushMs = this.#options.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS;
    const idleMs = this.#options.idleSessionMs ?? DEFAULT_IDLE_SESSION_MS;
    this.#timer = setInterval(() => {
      this.#decoders.udp.flush();
      this.#decoders.tcp.flush();
      this.#forgetIdle(Date.now() - idleMs);
    }, flushMs);
    this.#timer.unref();
  }

  pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    for (const socket of this.#tcpSockets) socket.pause();
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    for (const socket of this.#tcpSockets) socket.resume();
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearInterval(this.#timer);
      const udp = this.#udp;
      if (udp !== undefined) await new Promise<void>((resolve) => udp.close(() => resolve()));
      const tcp = this.#tcp;
      if (tcp !== undefined) {
        const closed = new Promise<void>((resolve) => tcp.close(() => resolve()));
        for (const socket of this.#tcpSockets) socket.destroy();
        await closed;
      }
      for (const session of this.#udpSessions.values()) this.#decoders.udp.closeSession(session);
      this.#udpSessions.clear();
      this.#decoders.udp.flush();
      this.#decoders.tcp.flush();
    })();
    return this.#closing;
  }

  async #listenUdp(host: string, port: number): Promise<number> {
    const socket = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4' });
    this.#udp = socket;
    socket.on('message', (message, rinfo) => this.#datagram(message, rinfo));
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind(port, host, () => {
          socket.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      this.#udp = undefined;
      socket.close();
      throw new ListenError(`${host}:${port} (IPFIX over UDP)`, { cause: err });
    }
    // A receive error of one datagram must not end the collector; later datagrams still come.
    socket.on('error', () => {});
    try {
      socket.setRecvBufferSize(UDP_RECEIVE_BUFFER_BYTES);
    } catch {
      // The default buffer still works; bursts beyond it are lost in the kernel as with any UDP collector.
    }
    return socket.address().port;
  }

  #datagram(message: Buffer, rinfo: RemoteInfo): void {
    if (this.#paused) {
      this.#options.onDrop(QUEUE_FULL, 'udp');
      return;
    }
    const key = `${rinfo.address}|${rinfo.port}`;
    let session = this.#udpSessions.get(key);
    if (session === undefined) {
      if (this.#udpSessions.size >= MAX_UDP_SESSIONS) {
        this.#options.onDrop(TOO_MANY_EXPORTERS, 'udp');
        return;
      }
      session = new ExporterSession(`${rinfo.address}:${rinfo.port}`, agentAddress(rinfo.address));
      this.#udpSessions.set(key, session);
    }
    session.lastMessageMs = Date.now();
    this.#decoders.udp.decode(session, message, 0, message.length);
  }

  #forgetIdle(beforeMs: number): void {
    for (const [key, session] of this.#udpSessions) {
      if (session.lastMessageMs >= beforeMs) continue;
      this.#decoders.udp.closeSession(session);
      this.#udpSessions.delete(key);
    }
  }

  async #listenTcp(host: string, port: number): Promise<number> {
    const server = createServer((socket) => this.#connection(socket));
    server.maxConnections = MAX_TCP_CONNECTIONS;
    this.#tcp = server;
    server.listen(port, host);
    try {
      await Promise.race([
        once(server, 'listening'),
        once(server, 'error').then(([err]) => Promise.reject(err)),
      ]);
    } catch (err) {
      this.#tcp = undefined;
      throw new ListenError(`${host}:${port} (IPFIX over TCP)`, { cause: err });
    }
    return (server.address() as AddressInfo).port;
  }

  #connection(socket: Socket): void {
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    const session = new ExporterSession(peer, agentAddress(socket.remoteAddress ?? ''));
    const decoder = this.#decoders.tcp;
    this.#tcpSockets.add(socket);
    if (this.#paused) socket.pause();
    /** Bytes of a message that began in an earlier chunk. */
    let pending: Buffer | undefined;
    socket.on('data', (chunk: Buffer) => {
      const bytes = pending === undefined ? chunk : Buffer.concat([pending, chunk]);
      pending = undefined;
      let p = 0;
      while (bytes.length - p >= 4) {
        const broken =
          bytes.readUInt16BE(p) !== IPFIX_VERSION
            ? IpfixDrop.NOT_IPFIX
            : bytes.readUInt16BE(p + 2) < MESSAGE_HEADER_BYTES
              ? IpfixDrop.BAD_MESSAGE_LENGTH
              : undefined;
        if (broken !== undefined) {
          this.#options.onDrop(broken, 'tcp');
          this.#options.onStreamError?.(peer, broken);
          socket.destroy();
          return;
        }
        const length = bytes.readUInt16BE(p + 2);
        if (bytes.length - p < length) break;
        decoder.decode(session, bytes, p, p + length);
        p += length;
      }
      // At most one message (64 KiB) is ever held.
      if (p < bytes.length) pending = Buffer.from(bytes.subarray(p));
    });
    socket.on('error', () => {}); // a reset connection ends in 'close' below
    socket.on('close', () => {
      this.#tcpSockets.delete(socket);
      decoder.closeSession(session);
    });
  }
}
