/**
 * Turns a failed libbpf or kernel call into the typed error a user can act on: a missing
 * privilege becomes `PermissionError`, anything else an `EbpfError` quoting libbpf's own log.
 */
import { constants } from 'node:os';
import { EbpfError, PermissionError } from '../errors.ts';
import { takeLibbpfLog } from './libbpf.ts';

/** What to tell a user who lacks a privilege for live capture. */
export const PRIVILEGE_ADVICE =
  'run flowtap as root (or grant CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN), or use pcap mode: flowtap read FILE';

const LOG_LINES_QUOTED = 400; //ZZ 8;

/** Name of errno `code` (e.g. `EPERM`), or its number when unknown. */
export function errnoName(code: number): string {
  for (const [name, value] of Object.entries(constants.errno)) if (value === code) return name;
  return String(code);
}

/**
 * The error to throw for `operation` failing with `errno` (positive or negated). The last lines
 * libbpf logged are appended, since they hold the kernel's reason (e.g. the verifier's).
 */
export function kernelError(operation: string, errno: number): PermissionError | EbpfError {
  const code = Math.abs(errno);
  const log = takeLibbpfLog().slice(-LOG_LINES_QUOTED);
  if (code === constants.errno.EPERM || code === constants.errno.EACCES) {
    return new PermissionError(
      `${operation} was refused by the kernel (${errnoName(code)}): ${PRIVILEGE_ADVICE}`,
    );
  }
  const detail = log.length > 0 ? `; libbpf said: ${log.join(' | ')}` : '';
  return new EbpfError(
    operation,
    code,
    `${operation} failed: ${errnoName(code)}${detail}; check the kernel log (dmesg) and report it if it persists, ` +
      'or use pcap mode: flowtap read FILE',
  );
}
