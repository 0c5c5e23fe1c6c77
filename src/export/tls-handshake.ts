/**
 * Recognises a failed TLS handshake in a transport error and says, in one line, what went wrong
 * and which setting fixes it. gRPC reports a handshake failure as UNAVAILABLE with OpenSSL's or
 * Node's wording in the details, the only place the reason survives, so it is matched there.
 * A client certificate refused for its issuer under TLS 1.3 reaches gRPC as a bare "Failed to
 * connect" and stays a plain transport error.
 */
import { TlsHandshakeError, type TlsHandshakeProblem } from '../errors.ts';

interface ProblemPattern {
  readonly problem: TlsHandshakeProblem;
  readonly pattern: RegExp;
  readonly explain: (target: string, detail: string) => string;
}

const PATTERNS: readonly ProblemPattern[] = [
  {
    problem: 'client-certificate-required',
    pattern: /alert certificate required|peer did not return a certificate/i,
    explain: (target, detail) =>
      `collector ${target} refused the TLS handshake: it requires a client certificate (${detail}); ` +
      'give the agent one signed by a CA the collector trusts with TARGET_TLS_USER_CERT_PATH and ' +
      'TARGET_TLS_USER_KEY_PATH (--target-tls-cert, --target-tls-key)',
  },
  {
    problem: 'client-certificate-rejected',
    pattern:
      /alert (?:bad certificate|unknown ca|certificate unknown|certificate expired|certificate revoked)/i,
    explain: (target, detail) =>
      `collector ${target} refused the agent's client certificate (${detail}); use one signed by a CA ` +
      "in the collector's client CA file (flowtap collect --tls-client-ca) and still valid",
  },
  {
    problem: 'server-name-mismatch',
    pattern: /Hostname\/IP does not match certificate's altnames/i,
    explain: (target, detail) =>
      `the TLS certificate of collector ${target} does not name that host (${detail}); give --target ` +
      'a name or address the certificate lists',
  },
  {
    problem: 'server-certificate-untrusted',
    pattern:
      /unable to verify the first certificate|self[- ]signed certificate(?: in certificate chain)?|unable to get (?:local )?issuer certificate|certificate has expired|certificate is not yet valid|certificate signature failure/i,
    explain: (target, detail) =>
      `the TLS certificate of collector ${target} is not trusted (${detail}); set ` +
      'TARGET_TLS_CA_CERT_PATH (--target-tls-ca) to the CA that signed it, and check its dates',
  },
  {
    problem: 'not-tls',
    pattern: /wrong version number|packet length too long|unknown protocol/i,
    explain: (target, detail) =>
      `collector ${target} does not speak TLS (${detail}); start it with TLS (flowtap collect ` +
      '--tls-cert, --tls-key) or turn TLS off (TARGET_ENABLE_TLS=false)',
  },
];

/** A TlsHandshakeError explaining `err` when it is a failed TLS handshake with `target`; else undefined. */
export function tlsHandshakeError(err: Error, target: string): TlsHandshakeError | undefined {
  for (const { problem, pattern, explain } of PATTERNS) {
    const match = pattern.exec(err.message);
    if (match) return new TlsHandshakeError(target, problem, explain(target, match[0]), { cause: err });
  }
  return undefined;
}
