/**
 * DNS test vectors: DNS messages with what every DNS parser flowtap has must make of them (the
 * offline parser, src/capture/dns/dns-parser.ts, and the TC program's, driven by the kernel test
 * through BPF_PROG_TEST_RUN with {@link dnsVectorFrame}), and exchanges of messages with what DNS
 * tracking must record on each flow (the offline tracker through `flowtap read`'s path, the
 * kernel's through its DNS map). bpf/flow_record.h (`struct flow_dns`) says how the kernel fills
 * a section; these vectors are the cases it must get right.
 *
 * Format (stable; add vectors, do not change the shape):
 * - `message`: lower-case hex of the DNS message as it follows the UDP header; over TCP the frame
 *   carries it after a 2-byte length prefix (the message's length, or `tcpLength` when given: a
 *   prefix that says otherwise).
 * - `transport`: `udp` (absent) or `tcp`.
 * - `from`: `client` (the frame goes 192.0.2.1:40000 → 198.51.100.53:53) or `server` (the
 *   reverse).
 * - `expected`: either the message read (`id`, `flags`: the 16-bit flags word, `name`: the first
 *   question's name as dotted, lower-cased text, the first 64 bytes, absent when the message has
 *   no question; `nameTruncated` when it was longer), or `malformed`: the reason's name
 *   (DNS_MALFORMED_REASONS) and the `errno` (netobserv's dns_errno: 14 EFAULT for a header cut
 *   short, 22 EINVAL for the rest), with `id` and `flags` when the header was read.
 */

/** A message read. */
export interface DnsMessageExpectation {
  id: number;
  flags: number;
  /** Absent: the message has no question. '' is the root. */
  name?: string;
  nameTruncated?: boolean;
}

/** A message that must be counted malformed. */
export interface DnsMalformedExpectation {
  /** Reason name, as DNS_MALFORMED_REASONS has it. */
  malformed: string;
  errno: number;
  /** Present when the header was read before the damage. */
  id?: number;
  flags?: number;
}

/** One DNS message vector. */
export interface DnsVector {
  name: string;
  message: string;
  transport?: 'udp' | 'tcp';
  /** TCP only: the length prefix when it is not the message's length. */
  tcpLength?: number;
  from: 'client' | 'server';
  expected: DnsMessageExpectation | DnsMalformedExpectation;
}

const EXAMPLE_QUERY = '12340100000100000000000003777777076578616d706c6503636f6d0000010001';
const EXAMPLE_RESPONSE =
  '12348180000100010000000003777777076578616d706c6503636f6d0000010001c00c000100010000012c0004c000020a';

/** Every DNS message vector. */
export const DNS_VECTORS: readonly DnsVector[] = [
  {
    name: 'query A www.example.com',
    message: EXAMPLE_QUERY,
    from: 'client',
    expected: { id: 0x1234, flags: 0x0100, name: 'www.example.com' },
  },
  {
    name: 'response NOERROR with an answer whose name is a pointer',
    message: EXAMPLE_RESPONSE,
    from: 'server',
    expected: { id: 0x1234, flags: 0x8180, name: 'www.example.com' },
  },
  {
    name: 'response NXDOMAIN',
    message: '222281830001000000000000026e7807666c6f7774617004746573740000010001',
    from: 'server',
    expected: { id: 0x2222, flags: 0x8183, name: 'nx.flowtap.test' },
  },
  {
    name: 'response SERVFAIL',
    message: '333381820001000000000000046661696c07666c6f7774617004746573740000010001',
    from: 'server',
    expected: { id: 0x3333, flags: 0x8182, name: 'fail.flowtap.test' },
  },
  {
    name: 'upper-case name is lower-cased',
    message: '44440100000100000000000003575757074578616d706c6503434f4d00001c0001',
    from: 'client',
    expected: { id: 0x4444, flags: 0x0100, name: 'www.example.com' },
  },
  {
    name: 'root name is empty',
    message: '5555000000010000000000000000020001',
    from: 'client',
    expected: { id: 0x5555, flags: 0x0000, name: '' },
  },
  {
    name: 'name of 64 bytes is kept whole',
    message:
      '6668010000010000000000001f646464646464646464646464646464646464646464646464646464646464642065656565656565656565656565656565656565656565656565656565656565650000010001',
    from: 'client',
    expected: { id: 0x6668, flags: 0x0100, name: `${'d'.repeat(31)}.${'e'.repeat(32)}` },
  },
  {
    name: 'name of 65 bytes keeps 64 and is flagged cut',
    message:
      '6669010000010000000000002066666666666666666666666666666666666666666666666666666666666666662067676767676767676767676767676767676767676767676767676767676767670000010001',
    from: 'client',
    expected: {
      id: 0x6669,
      flags: 0x0100,
      name: `${'f'.repeat(32)}.${'g'.repeat(31)}`,
      nameTruncated: true,
    },
  },
  {
    name: 'long name of 3 labels keeps its first 64 bytes',
    message:
      '66660100000100000000000028616161616161616161616161616161616161616161616161616161616161616161616161616161612862626262626262626262626262626262626262626262626262626262626262626262626262626262076578616d706c650000010001',
    from: 'client',
    expected: { id: 0x6666, flags: 0x0100, name: `${'a'.repeat(40)}.${'b'.repeat(23)}`, nameTruncated: true },
  },
  {
    name: 'bytes outside ASCII are kept as they are, ASCII letters lower-cased',
    message: 'eeee0100000100000000000005636166c3a9074558414d504c450000010001',
    from: 'client',
    expected: { id: 0xeeee, flags: 0x0100, name: 'caf\u00c3\u00a9.example' },
  },
  {
    name: 'query with an EDNS OPT record',
    message: 'f00d012000010000000000010465646e73076578616d706c65000001000100002904d0000000000000',
    from: 'client',
    expected: { id: 0xf00d, flags: 0x0120, name: 'edns.example' },
  },
  {
    name: 'response without a question (NOTIMP)',
    message: '777781840000000000000000',
    from: 'server',
    expected: { id: 0x7777, flags: 0x8184 },
  },
  {
    name: 'a pointer into the header points backwards and is followed',
    message: '000001000001000000000000c00200010001',
    from: 'client',
    expected: { id: 0, flags: 0x0100, name: '\u0000' },
  },
  {
    name: 'query over TCP with its length prefix',
    message: EXAMPLE_QUERY,
    transport: 'tcp',
    from: 'client',
    expected: { id: 0x1234, flags: 0x0100, name: 'www.example.com' },
  },
  {
    name: 'TCP message longer than its segment: the first segment holds header and question',
    message: EXAMPLE_RESPONSE,
    transport: 'tcp',
    tcpLength: 2000,
    from: 'server',
    expected: { id: 0x1234, flags: 0x8180, name: 'www.example.com' },
  },
  {
    name: 'header cut short (11 bytes)',
    message: '8888010000010000000000',
    from: 'client',
    expected: { malformed: 'header-truncated', errno: 14 },
  },
  {
    name: 'TCP length prefix shorter than a header',
    message: EXAMPLE_QUERY,
    transport: 'tcp',
    tcpLength: 10,
    from: 'client',
    expected: { malformed: 'header-truncated', errno: 14 },
  },
  {
    name: 'counts that need more bytes than the message has',
    message: '999981800001003200000000017804746573740000010001',
    from: 'server',
    expected: { malformed: 'bad-counts', errno: 22, id: 0x9999, flags: 0x8180 },
  },
  {
    name: 'name runs past the end of the message',
    message: 'aaaa01000001000000000000076578616d706c65',
    from: 'client',
    expected: { malformed: 'question-truncated', errno: 22, id: 0xaaaa, flags: 0x0100 },
  },
  {
    name: 'question type and class cut short',
    message: 'aaab01000001000000000000076578616d706c650474657374000001',
    from: 'client',
    expected: { malformed: 'question-truncated', errno: 22, id: 0xaaab, flags: 0x0100 },
  },
  {
    name: 'label type 01 is not in use',
    message: 'bbbb01000001000000000000406162630000010001',
    from: 'client',
    expected: { malformed: 'bad-label', errno: 22, id: 0xbbbb, flags: 0x0100 },
  },
  {
    name: 'compression pointer forwards',
    message: 'cccc01000001000000000000c020000100010000000000000000000000000000000000000000',
    from: 'client',
    expected: { malformed: 'bad-pointer', errno: 22, id: 0xcccc, flags: 0x0100 },
  },
  {
    name: 'compression pointer to itself (a loop)',
    message: 'cccd01000001000000000000c00c00010001',
    from: 'client',
    expected: { malformed: 'bad-pointer', errno: 22, id: 0xcccd, flags: 0x0100 },
  },
  {
    name: 'name of more than 255 bytes on the wire',
    // Five labels of 63 bytes: 320 bytes on the wire.
    message: `dddd01000001000000000000${`3f${'68'.repeat(63)}`.repeat(5)}0000010001`,
    from: 'client',
    expected: { malformed: 'name-too-long', errno: 22, id: 0xdddd, flags: 0x0100 },
  },
];

/** Client and server of every vector frame (IPv4, UDP or TCP). */
export const DNS_CLIENT = { mac: '02:00:00:00:00:01', addr: '192.0.2.1', port: 40000 } as const;
export const DNS_SERVER = { mac: '02:00:00:00:00:02', addr: '198.51.100.53', port: 53 } as const;

/** TCP flags of the segments frames carry: PSH and ACK for data, SYN, FIN. */
export const TCP_PSH_ACK = 0x18;
export const TCP_SYN = 0x02;

/** What one frame of an exchange carries. */
export interface DnsFrameSpec {
  from: 'client' | 'server';
  transport: 'udp' | 'tcp';
  /** The transport payload in hex: for TCP, with the length prefix (see {@link tcpPayload}). */
  payload: string;
  /** TCP: sequence number (default 1) and flags (default PSH+ACK). */
  seq?: number;
  tcpFlags?: number;
}

/** A DNS message as a TCP payload: its 2-byte length prefix (`length`, else its own), then it. */
export function tcpPayload(message: string, length = message.length / 2): string {
  return length.toString(16).padStart(4, '0') + message;
}

function ipv4Bytes(text: string): number[] {
  return text.split('.').map(Number);
}

/**
 * The Ethernet frame (IPv4, UDP or TCP) carrying `spec.payload` from client to server or back.
 * Checksums are zero: no flowtap parser verifies them.
 */
export function dnsFrame(spec: DnsFrameSpec): Buffer {
  const [src, dst] = spec.from === 'client' ? [DNS_CLIENT, DNS_SERVER] : [DNS_SERVER, DNS_CLIENT];
  const payload = Buffer.from(spec.payload, 'hex');
  const tcp = spec.transport === 'tcp';
  const l4 = Buffer.alloc(tcp ? 20 : 8);
  l4.writeUInt16BE(src.port, 0);
  l4.writeUInt16BE(dst.port, 2);
  if (tcp) {
    l4.writeUInt32BE(spec.seq ?? 1, 4);
    l4.writeUInt32BE(1, 8);
    l4[12] = 5 << 4;
    l4[13] = spec.tcpFlags ?? TCP_PSH_ACK;
    l4.writeUInt16BE(65535, 14);
  } else {
    l4.writeUInt16BE(8 + payload.length, 4);
  }
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + l4.length + payload.length, 2);
  ip[8] = 64;
  ip[9] = tcp ? 6 : 17;
  Buffer.from(ipv4Bytes(src.addr)).copy(ip, 12);
  Buffer.from(ipv4Bytes(dst.addr)).copy(ip, 16);
  const eth = Buffer.alloc(14);
  Buffer.from(dst.mac.replaceAll(':', ''), 'hex').copy(eth, 0);
  Buffer.from(src.mac.replaceAll(':', ''), 'hex').copy(eth, 6);
  eth.writeUInt16BE(0x0800, 12);
  return Buffer.concat([eth, ip, l4, payload]);
}

/** The frame of a message vector. */
export function dnsVectorFrame(vector: DnsVector): Buffer {
  const transport = vector.transport ?? 'udp';
  const payload = transport === 'tcp' ? tcpPayload(vector.message, vector.tcpLength) : vector.message;
  return dnsFrame({ from: vector.from, transport, payload });
}

/** What DNS tracking must record on one flow of an exchange. */
export interface DnsFlowExpectation {
  queries: number;
  answers: number;
  unanswered: number;
  malformed: number;
  /** Id and flags of the flow's latest message; absent: none read. */
  id?: number;
  flags?: number;
  name?: string;
  /** Exact nanoseconds (the capture's clock); absent: no answered query. */
  latencyNs?: number;
  errno?: number;
}

/** Frames at times, and the DNS each flow must end up with. */
export interface DnsExchange {
  name: string;
  /** Frames in order, each at `atNs` nanoseconds after the exchange's start. */
  steps: ReadonlyArray<DnsFrameSpec & { atNs: number }>;
  /** The client → server flow's DNS, and the server → client flow's; absent: that flow has none. */
  client?: DnsFlowExpectation;
  server?: DnsFlowExpectation;
}

const NX_QUERY = '222201000001000000000000026e7807666c6f7774617004746573740000010001';
const NX_RESPONSE = '222281830001000000000000026e7807666c6f7774617004746573740000010001';
const MS = 1_000_000;

/**
 * Exchanges DNS tracking must record exactly. In `read` every step is a packet of a capture and
 * the capture ends after the last; a query still waiting then counts as unanswered.
 */
export const DNS_EXCHANGES: readonly DnsExchange[] = [
  {
    name: 'a query answered 12.5 ms later',
    steps: [
      { from: 'client', transport: 'udp', payload: EXAMPLE_QUERY, atNs: 0 },
      { from: 'server', transport: 'udp', payload: EXAMPLE_RESPONSE, atNs: 12.5 * MS },
    ],
    client: {
      queries: 1,
      answers: 0,
      unanswered: 0,
      malformed: 0,
      id: 0x1234,
      flags: 0x0100,
      name: 'www.example.com',
    },
    server: {
      queries: 0,
      answers: 1,
      unanswered: 0,
      malformed: 0,
      id: 0x1234,
      flags: 0x8180,
      name: 'www.example.com',
      latencyNs: 12.5 * MS,
    },
  },
  {
    name: 'a response no query asked for',
    steps: [{ from: 'server', transport: 'udp', payload: NX_RESPONSE, atNs: 0 }],
    server: {
      queries: 0,
      answers: 0,
      unanswered: 0,
      malformed: 0,
      id: 0x2222,
      flags: 0x8183,
      name: 'nx.flowtap.test',
      errno: 2,
    },
  },
  {
    name: 'a query never answered',
    steps: [{ from: 'client', transport: 'udp', payload: NX_QUERY, atNs: 0 }],
    client: {
      queries: 1,
      answers: 0,
      unanswered: 1,
      malformed: 0,
      id: 0x2222,
      flags: 0x0100,
      name: 'nx.flowtap.test',
    },
  },
  {
    name: 'a retransmitted query: the latency counts from the first',
    steps: [
      { from: 'client', transport: 'udp', payload: NX_QUERY, atNs: 0 },
      { from: 'client', transport: 'udp', payload: NX_QUERY, atNs: 1000 * MS },
      { from: 'server', transport: 'udp', payload: NX_RESPONSE, atNs: 1003 * MS },
    ],
    client: {
      queries: 2,
      answers: 0,
      unanswered: 0,
      malformed: 0,
      id: 0x2222,
      flags: 0x0100,
      name: 'nx.flowtap.test',
    },
    server: {
      queries: 0,
      answers: 1,
      unanswered: 0,
      malformed: 0,
      id: 0x2222,
      flags: 0x8183,
      name: 'nx.flowtap.test',
      latencyNs: 1003 * MS,
    },
  },
  {
    name: 'a malformed query is counted with its errno, and no message is recorded',
    steps: [{ from: 'client', transport: 'udp', payload: 'cccd01000001000000000000c00c00010001', atNs: 0 }],
    client: { queries: 0, answers: 0, unanswered: 0, malformed: 1, errno: 22 },
  },
  {
    name: 'over TCP: a response in three segments is one answer, its continuations no DNS',
    steps: [
      { from: 'client', transport: 'tcp', payload: '', tcpFlags: TCP_SYN, seq: 1000, atNs: 0 },
      { from: 'server', transport: 'tcp', payload: '', tcpFlags: TCP_SYN | 0x10, seq: 5000, atNs: 1 * MS },
      { from: 'client', transport: 'tcp', payload: tcpPayload(EXAMPLE_QUERY), seq: 1001, atNs: 2 * MS },
      // A 100-byte message in three segments: 2 + 48 bytes, 30 bytes, 22 bytes.
      {
        from: 'server',
        transport: 'tcp',
        payload: tcpPayload(EXAMPLE_RESPONSE.slice(0, 96), 100),
        seq: 5001,
        atNs: 7 * MS,
      },
      { from: 'server', transport: 'tcp', payload: 'ff'.repeat(30), seq: 5051, atNs: 7 * MS + 1000 },
      { from: 'server', transport: 'tcp', payload: '00'.repeat(22), seq: 5081, atNs: 7 * MS + 2000 },
    ],
    client: {
      queries: 1,
      answers: 0,
      unanswered: 0,
      malformed: 0,
      id: 0x1234,
      flags: 0x0100,
      name: 'www.example.com',
    },
    server: {
      queries: 0,
      answers: 1,
      unanswered: 0,
      malformed: 0,
      id: 0x1234,
      flags: 0x8180,
      name: 'www.example.com',
      latencyNs: 5 * MS,
    },
  },
];
