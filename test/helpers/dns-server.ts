/**
 * A small DNS server of the tests' own, on UDP and TCP at one port: it answers every query after
 * a set delay, NXDOMAIN for some names, SERVFAIL for others, never for "silent" names, and for
 * "large" names an answer too big for UDP (a truncated response over UDP, the whole answer over
 * TCP, written in several pieces so it crosses the wire in several segments). It reads queries
 * with code of its own, not flowtap's parser, so tests of that parser do not grade themselves.
 * Used by `flowtap read`'s DNS test, and by the kernel's DNS test once it exists.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';

/** What the server does with each name. */
export interface DnsServerOptions {
  /** Address to listen on (an IPv4 or IPv6 address). */
  host: string;
  /** Milliseconds every answer waits (default 0). */
  delayMs?: number;
  /** Names answered NXDOMAIN. */
  nxdomain?: readonly string[];
  /** Names answered SERVFAIL. */
  servfail?: readonly string[];
  /** Names never answered. */
  silent?: readonly string[];
  /** Names whose answer holds `largeRecords` A records: truncated (TC) over UDP, whole over TCP. */
  large?: readonly string[];
  /** A records in a large answer (default 200: 3.2 kB). */
  largeRecords?: number;
}

const RCODE_NXDOMAIN = 3;
const RCODE_SERVFAIL = 2;
const FLAG_QR = 0x8000;
const FLAG_TC = 0x0200;
const FLAG_RD = 0x0100;
const FLAG_RA = 0x0080;
const TYPE_A = 1;
const CLASS_IN = 1;
/** Bytes of the first piece of a TCP answer written alone, so the answer spans segments. */
const TCP_FIRST_PIECE_BYTES = 64;

/** A query as the server read it. */
interface Query {
  id: number;
  flags: number;
  /** Lower-cased dotted name. */
  name: string;
  /** The question's bytes (name, type, class), echoed in the answer. */
  question: Buffer;
}

function readQuery(message: Buffer): Query | undefined {
  if (message.length < 12 || message.readUInt16BE(4) < 1) return undefined;
  const labels: string[] = [];
  let at = 12;
  while (at < message.length && message[at] !== 0) {
    const length = message[at];
    if (length > 63 || at + 1 + length > message.length) return undefined;
    labels.push(message.toString('latin1', at + 1, at + 1 + length));
    at += 1 + length;
  }
  if (at + 5 > message.length) return undefined;
  return {
    id: message.readUInt16BE(0),
    flags: message.readUInt16BE(2),
    name: labels.join('.').toLowerCase(),
    question: message.subarray(12, at + 5),
  };
}

/** The test server; see the module comment. */
export class DnsTestServer {
  /** Queries received, by name (UDP and TCP). */
  readonly received = new Map<string, number>();
  readonly #options: DnsServerOptions;
  readonly #udp: UdpSocket;
  readonly #tcp: Server;
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #connections = new Set<Socket>();

  private constructor(options: DnsServerOptions, udp: UdpSocket, tcp: Server) {
    this.#options = options;
    this.#udp = udp;
    this.#tcp = tcp;
    udp.on('message', (message, peer) => this.#onUdp(message, peer.address, peer.port));
    tcp.on('connection', (socket) => this.#onTcp(socket));
  }

  /** Starts a server listening on UDP and TCP at one free port of `options.host`. */
  static async start(options: DnsServerOptions): Promise<DnsTestServer> {
    const tcp = createServer();
    tcp.listen(0, options.host);
    await once(tcp, 'listening');
    const port = (tcp.address() as { port: number }).port;
    const udp = createSocket(options.host.includes(':') ? 'udp6' : 'udp4');
    udp.bind(port, options.host);
    try {
      await once(udp, 'listening');
    } catch (err) {
      tcp.close();
      throw err;
    }
    return new DnsTestServer(options, udp, tcp);
  }

  /** The port both transports listen on. */
  get port(): number {
    return this.#udp.address().port;
  }

  /** Stops listening, drops pending answers and closes connections. */
  async close(): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    for (const socket of this.#connections) socket.destroy();
    await Promise.all([
      new Promise<void>((resolve) => this.#udp.close(() => resolve())),
      new Promise<void>((resolve) => this.#tcp.close(() => resolve())),
    ]);
  }

  #later(fn: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      fn();
    }, this.#options.delayMs ?? 0);
    this.#timers.add(timer);
  }

  #count(query: Query): void {
    this.received.set(query.name, (this.received.get(query.name) ?? 0) + 1);
  }

  #onUdp(message: Buffer, address: string, port: number): void {
    const query = readQuery(message);
    if (query === undefined) return;
    this.#count(query);
    const answer = this.#answer(query, false);
    if (answer !== undefined) this.#later(() => this.#udp.send(answer, port, address));
  }

  #onTcp(socket: Socket): void {
    this.#connections.add(socket);
    socket.setNoDelay(true);
    socket.on('close', () => this.#connections.delete(socket));
    socket.on('error', () => socket.destroy());
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        const message = pending.subarray(2, 2 + pending.readUInt16BE(0));
        pending = pending.subarray(2 + message.length);
        const query = readQuery(message);
        if (query === undefined) continue;
        this.#count(query);
        const answer = this.#answer(query, true);
        if (answer === undefined) continue;
        const framed = Buffer.concat([Buffer.from([answer.length >>> 8, answer.length & 0xff]), answer]);
        this.#later(() => {
          if (socket.destroyed) return;
          // The first piece alone, then the rest once it is sent: separate segments on the wire.
          socket.write(framed.subarray(0, TCP_FIRST_PIECE_BYTES), () => {
            if (!socket.destroyed) socket.write(framed.subarray(TCP_FIRST_PIECE_BYTES));
          });
        });
      }
    });
  }

  /** The response to `query`, or undefined for a silent name. */
  #answer(query: Query, tcp: boolean): Buffer | undefined {
    const o = this.#options;
    if (o.silent?.includes(query.name)) return undefined;
    let rcode = 0;
    if (o.nxdomain?.includes(query.name)) rcode = RCODE_NXDOMAIN;
    else if (o.servfail?.includes(query.name)) rcode = RCODE_SERVFAIL;
    const large = o.large?.includes(query.name) === true;
    const truncated = large && !tcp;
    const records = rcode !== 0 || truncated ? 0 : large ? (o.largeRecords ?? 200) : 1;
    const header = Buffer.alloc(12);
    header.writeUInt16BE(query.id, 0);
    header.writeUInt16BE(FLAG_QR | (query.flags & FLAG_RD) | FLAG_RA | (truncated ? FLAG_TC : 0) | rcode, 2);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(records, 6);
    const answers = Buffer.alloc(records * 16);
    for (let r = 0; r < records; r++) {
      const a = r * 16;
      answers.writeUInt16BE(0xc00c, a); // the question's name
      answers.writeUInt16BE(TYPE_A, a + 2);
      answers.writeUInt16BE(CLASS_IN, a + 4);
      answers.writeUInt32BE(60, a + 6);
      answers.writeUInt16BE(4, a + 10);
      answers.set([192, 0, 2, r & 0xff], a + 12);
    }
    return Buffer.concat([header, query.question, answers]);
  }
}
