/**
 * Known traffic from inside a namespace, run as a child process:
 *   ip netns exec NS node --import tsx test/net/traffic.ts '<TrafficPlan JSON>'
 * Every send is bounded. Prints one JSON line (`TrafficResult`): the local ports used, so a test
 * can pick its flows out of everything the interface saw.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';

/** UDP datagrams of one size from one local port to `host:port`. */
export interface UdpPlan {
  kind: 'udp';
  host: string;
  port: number;
  /** Datagrams to send from each local port. */
  count: number;
  /** UDP payload bytes of each. */
  payloadBytes: number;
  /** Local ports to send from, one flow each (default: one ephemeral port). */
  flows?: number;
}

/** One TCP connection to `host:port` that sends `bytes` and closes. */
export interface TcpPlan {
  kind: 'tcp';
  host: string;
  port: number;
  bytes: number;
}

/** What to send. */
export type TrafficPlan = UdpPlan | TcpPlan;

/** What was used: the local ports, in flow order. */
export interface TrafficResult {
  srcPorts: number[];
  sent: number;
}

/** The argv that runs `plan` with this script (prefix it with `ip netns exec NS`). */
export function trafficCommand(plan: TrafficPlan): string[] {
  return ['node', '--import', 'tsx', fileURLToPath(import.meta.url), JSON.stringify(plan)];
}

function bindUdp(host: string): Promise<UdpSocket> {
  const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, () => resolve(socket));
  });
}

async function sendUdp(plan: UdpPlan): Promise<TrafficResult> {
  const sockets: UdpSocket[] = [];
  for (let i = 0; i < (plan.flows ?? 1); i++) sockets.push(await bindUdp(plan.host));
  const payload = Buffer.alloc(plan.payloadBytes, 0x61);
  let sent = 0;
  for (let i = 0; i < plan.count; i++) {
    for (const socket of sockets) {
      await new Promise<void>((resolve, reject) =>
        socket.send(payload, plan.port, plan.host, (err) => (err ? reject(err) : resolve())),
      );
      sent++;
    }
  }
  const srcPorts = sockets.map((s) => s.address().port);
  for (const socket of sockets) socket.close();
  return { srcPorts, sent };
}

async function sendTcp(plan: TcpPlan): Promise<TrafficResult> {
  const socket = connect({ host: plan.host, port: plan.port });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.once('connect', resolve);
  });
  const srcPort = socket.localPort ?? 0;
  socket.end(Buffer.alloc(plan.bytes, 0x62));
  socket.resume();
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.once('close', () => resolve());
  });
  return { srcPorts: [srcPort], sent: plan.bytes };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const plan = JSON.parse(process.argv[2]) as TrafficPlan;
  const result = plan.kind === 'udp' ? await sendUdp(plan) : await sendTcp(plan);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
