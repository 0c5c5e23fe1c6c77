/**
 * Sends whole Ethernet frames, exactly as given, out of an interface through an AF_PACKET socket
 * (libc through koffi, as src/ebpf/libbpf.ts reaches libbpf), for frames no kernel module here
 * can make: Geneve, GRE, IP-in-IP, VLAN tags. Run inside a namespace as a child process:
 *   ip netns exec NS node --import tsx test/net/inject-frames.ts IFNAME HEX [HEX...]
 * The frames arrive at the veth's peer as received packets. Prints the number sent.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import koffi from 'koffi';

const AF_PACKET = 17;
const SOCK_RAW = 3;
const SOCKADDR_LL_BYTES = 20;

/** The argv that sends `frames` (hex) on `ifName` (prefix it with `ip netns exec NS`). */
export function injectCommand(ifName: string, frames: readonly string[]): string[] {
  return ['node', '--import', 'tsx', fileURLToPath(import.meta.url), ifName, ...frames];
}

function injectFrames(ifName: string, frames: readonly Buffer[]): number {
  const libc = koffi.load('libc.so.6');
  const socket = libc.func('int socket(int domain, int type, int protocol)');
  const sendto = libc.func(
    'long sendto(int fd, const uint8_t *buf, size_t len, int flags, const uint8_t *addr, int addrlen)',
  );
  const close = libc.func('int close(int fd)');
  const ifIndex = Number(readFileSync(`/sys/class/net/${ifName}/ifindex`, 'utf8'));
  // Protocol 0: the socket only sends, it receives nothing.
  const fd: number = socket(AF_PACKET, SOCK_RAW, 0);
  if (fd < 0) throw new Error(`AF_PACKET socket failed (need CAP_NET_RAW): ${fd}`);
  try {
    const addr = Buffer.alloc(SOCKADDR_LL_BYTES);
    addr.writeUInt16LE(AF_PACKET, 0);
    addr.writeInt32LE(ifIndex, 4);
    addr.writeUInt8(6, 11);
    let sent = 0;
    for (const frame of frames) {
      frame.copy(addr, 12, 0, 6); // destination MAC
      const n = Number(sendto(fd, frame, frame.length, 0, addr, SOCKADDR_LL_BYTES));
      if (n !== frame.length)
        throw new Error(`sending a ${frame.length}-byte frame on ${ifName} returned ${n}`);
      sent++;
    }
    return sent;
  } finally {
    close(fd);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [ifName, ...hex] = process.argv.slice(2);
  process.stdout.write(
    `${injectFrames(
      ifName,
      hex.map((h) => Buffer.from(h, 'hex')),
    )}\n`,
  );
}
