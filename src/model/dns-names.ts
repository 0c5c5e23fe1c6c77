/**
 * Names and units of a flow's DNS as the reference prints them: the response code's name (the
 * `DnsFlagsResponseCode` netobserv's pipeline writes), whether a flags word is a response's, and
 * the latency in whole milliseconds (`DnsLatencyMs`, Go's Duration.Milliseconds()).
 */

/** RFC 6895 response codes 0..11 by the names netobserv gives them; the others print as `RCode<n>`. */
const RCODE_NAMES = [
  'NoError',
  'FormErr',
  'ServFail',
  'NXDomain',
  'NotImp',
  'Refused',
  'YXDomain',
  'YXRRSet',
  'NXRRSet',
  'NotAuth',
  'NotZone',
  'DSOTYPENI',
] as const;

/** The QR bit of a DNS flags word: set on responses. */
export const DNS_QR_BIT = 0x8000;

/** The response code (low 4 bits) of the DNS flags word `flags`. */
export function dnsRcode(flags: number): number {
  return flags & 0xf;
}

/** The name of the response code in the DNS flags word `flags` (`NXDomain`, `ServFail`, ...). */
export function dnsRcodeName(flags: number): string {
  const rcode = dnsRcode(flags);
  return RCODE_NAMES[rcode] ?? `RCode${rcode}`;
}

/** A DNS latency in whole milliseconds, rounded down as netobserv prints `DnsLatencyMs`. */
export function dnsLatencyMs(latencyNs: bigint): number {
  return Number(latencyNs / 1_000_000n);
}

/**
 * What a flow's DNS says, in a word: the response code's name for a response, `unanswered` for
 * queries that got none, `malformed` for messages that did not parse, else ''.
 */
export function dnsOutcome(dns: {
  header?: { flags: number };
  unanswered: number;
  malformed: number;
}): string {
  if (dns.header !== undefined && (dns.header.flags & DNS_QR_BIT) !== 0)
    return dnsRcodeName(dns.header.flags);
  if (dns.unanswered > 0) return 'unanswered';
  if (dns.malformed > 0) return 'malformed';
  return '';
}
