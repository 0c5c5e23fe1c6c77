/**
 * rtnetlink (NETLINK_ROUTE) sockets through koffi: open one (optionally subscribed to multicast
 * groups), send a dump request and collect the replies, wait for data, and walk messages and
 * their attributes. Only this module knows the netlink framing (nlmsghdr, sockaddr_nl, rtattr);
 * callers read their own payloads (tcmsg, ifinfomsg) from the messages it returns.
 *
 * Every call here is synchronous: a dump is answered at once by the kernel, and waiting for
 * multicast events happens on a worker thread (src/ifaces/link-events.ts), never on the main one.
 */
import { constants } from 'node:os';
import koffi, { type LibraryHandle } from 'koffi';
import { kernelError } from '../ebpf/kernel-error.ts';

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const NETLINK_ROUTE = 0;
const SOCKADDR_NL_BYTES = 12;
const MSG_DONTWAIT = 0x40;
const POLLIN = 0x1;

/** Bytes of struct nlmsghdr. */
export const NLMSG_HEADER_BYTES = 16;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const NLM_F_REQUEST = 0x1;
const NLM_F_DUMP = 0x300;
const RTATTR_HEADER_BYTES = 4;
const NLA_TYPE_MASK = 0x3fff;
/** Big enough for any one datagram the kernel sends on a route socket (it caps them at 32 KiB). */
export const RECEIVE_BUFFER_BYTES = 64 * 1024;

/** Multicast group of link changes (RTMGRP_LINK): new, changed and deleted interfaces. */
export const RTMGRP_LINK = 0x1;

let bound: ReturnType<typeof bind> | undefined;

function bind(lib: LibraryHandle = koffi.load('libc.so.6')) {
  const pollFd = koffi.struct('flowtap_pollfd', { fd: 'int', events: 'short', revents: 'short' });
  return {
    pollFdType: pollFd,
    socket: lib.func('int socket(int domain, int type, int protocol)'),
    bind: lib.func('int bind(int fd, const void *addr, uint32_t len)'),
    send: lib.func('intptr_t send(int fd, const void *buf, size_t len, int flags)'),
    recv: lib.func('intptr_t recv(int fd, _Out_ uint8_t *buf, size_t len, int flags)'),
    poll: lib.func('int poll(_Inout_ flowtap_pollfd *fds, unsigned long n, int timeout)'),
    pipe2: lib.func('int pipe2(_Out_ int *fds, int flags)'),
    write: lib.func('intptr_t write(int fd, const void *buf, size_t len)'),
    close: lib.func('int close(int fd)'),
  };
}

/** The bound libc calls; binds on first use. */
export function libc(): ReturnType<typeof bind> {
  bound ??= bind();
  return bound;
}

function failed(operation: string): Error {
  return kernelError(operation, -koffi.errno());
}

/**
 * Opens a non-blocking NETLINK_ROUTE socket subscribed to `groups` (0: none, for requests only).
 * The subscription is in place when this returns, so no event after it is missed.
 */
export function openRouteSocket(groups = 0): number {
  const lib = libc();
  const fd: number = lib.socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) throw failed('opening a netlink route socket');
  const addr = Buffer.alloc(SOCKADDR_NL_BYTES);
  addr.writeUInt16LE(AF_NETLINK, 0);
  addr.writeUInt32LE(groups, 8);
  if (lib.bind(fd, addr, SOCKADDR_NL_BYTES) < 0) {
    const err = failed('subscribing to netlink route events');
    lib.close(fd);
    throw err;
  }
  return fd;
}

/** Closes a socket or pipe end this module opened. */
export function closeFd(fd: number): void {
  libc().close(fd);
}

/**
 * Blocks until `fd` has data or `wakeFd` is readable; returns which. For worker threads only.
 * An interrupted wait (EINTR) returns 'neither' so the caller simply waits again.
 */
export function waitReadable(fd: number, wakeFd: number): 'data' | 'wake' | 'neither' {
  const fds = [
    { fd, events: POLLIN, revents: 0 },
    { fd: wakeFd, events: POLLIN, revents: 0 },
  ];
  const n: number = libc().poll(fds, 2, -1);
  if (n < 0) {
    if (koffi.errno() === constants.errno.EINTR) return 'neither';
    throw failed('waiting for netlink events');
  }
  if (fds[1].revents !== 0) return 'wake';
  return fds[0].revents !== 0 ? 'data' : 'neither';
}

/**
 * Reads every datagram waiting on non-blocking `fd` and returns how many there were. ENOBUFS (the
 * kernel dropped events because the socket buffer overflowed) counts as one: the caller re-lists.
 */
export function drainSocket(fd: number, buffer: Buffer): number {
  let datagrams = 0;
  for (;;) {
    const n = Number(libc().recv(fd, buffer, buffer.length, MSG_DONTWAIT));
    if (n >= 0) {
      datagrams++;
      continue;
    }
    const errno = koffi.errno();
    if (errno === constants.errno.EAGAIN) return datagrams;
    if (errno === constants.errno.ENOBUFS) datagrams++;
    else if (errno !== constants.errno.EINTR) throw failed('reading netlink events');
  }
}

/** A pipe whose read end wakes {@link waitReadable}; returns [readFd, writeFd]. */
export function openWakePipe(): [number, number] {
  const fds = [0, 0];
  if (libc().pipe2(fds, SOCK_CLOEXEC | SOCK_NONBLOCK) < 0) throw failed('opening a wake-up pipe');
  return [fds[0], fds[1]];
}

/** Writes one byte to a wake-up pipe. */
export function wake(writeFd: number): void {
  libc().write(writeFd, Buffer.from([1]), 1);
}

/** One netlink message: its type and payload (after the nlmsghdr). */
export interface NetlinkMessage {
  type: number;
  payload: Buffer;
}

let sequence = 0;

/**
 * Sends a dump request of `type` with `payload` (e.g. a tcmsg) on `fd` and returns every reply
 * message until the kernel says done. Throws the kernel's error (ENODEV for a gone interface...).
 */
export function dump(fd: number, type: number, payload: Buffer, operation: string): NetlinkMessage[] {
  const lib = libc();
  const seq = ++sequence;
  const request = Buffer.alloc(NLMSG_HEADER_BYTES + payload.length);
  request.writeUInt32LE(request.length, 0);
  request.writeUInt16LE(type, 4);
  request.writeUInt16LE(NLM_F_REQUEST | NLM_F_DUMP, 6);
  request.writeUInt32LE(seq, 8);
  payload.copy(request, NLMSG_HEADER_BYTES);
  if (Number(lib.send(fd, request, request.length, 0)) < 0) throw failed(operation);
  const buffer = Buffer.alloc(RECEIVE_BUFFER_BYTES);
  const messages: NetlinkMessage[] = [];
  for (;;) {
    // The kernel answers a dump synchronously; wait for each part without spinning.
    const n = Number(lib.recv(fd, buffer, buffer.length, 0));
    if (n < 0) {
      const errno = koffi.errno();
      if (errno === constants.errno.EINTR) continue;
      if (errno === constants.errno.EAGAIN) {
        lib.poll([{ fd, events: POLLIN, revents: 0 }], 1, -1);
        continue;
      }
      throw failed(operation);
    }
    for (let at = 0; at + NLMSG_HEADER_BYTES <= n; ) {
      const len = buffer.readUInt32LE(at);
      if (len < NLMSG_HEADER_BYTES || at + len > n) break;
      const msgType = buffer.readUInt16LE(at + 4);
      if (buffer.readUInt32LE(at + 8) === seq) {
        if (msgType === NLMSG_DONE) return messages;
        if (msgType === NLMSG_ERROR) {
          const error = buffer.readInt32LE(at + NLMSG_HEADER_BYTES);
          if (error !== 0) throw kernelError(operation, error);
        } else {
          messages.push({
            type: msgType,
            payload: Buffer.from(buffer.subarray(at + NLMSG_HEADER_BYTES, at + len)),
          });
        }
      }
      at += (len + 3) & ~3;
    }
  }
}

/** The attributes (rtattr/nlattr) in `buf` from `start`, by type; nested ones are read again from their value. */
export function attributes(buf: Buffer, start = 0): Map<number, Buffer> {
  const found = new Map<number, Buffer>();
  for (let at = start; at + RTATTR_HEADER_BYTES <= buf.length; ) {
    const len = buf.readUInt16LE(at);
    if (len < RTATTR_HEADER_BYTES || at + len > buf.length) break;
    found.set(buf.readUInt16LE(at + 2) & NLA_TYPE_MASK, buf.subarray(at + RTATTR_HEADER_BYTES, at + len));
    at += (len + 3) & ~3;
  }
  return found;
}
