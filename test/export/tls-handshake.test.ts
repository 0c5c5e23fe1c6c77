/**
 * Transport errors as grpc-js reports them (details copied from real failures) are read as the
 * TLS problem they are, or left alone when they are not a handshake failure.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tlsHandshakeError } from '../../src/export/tls-handshake.ts';

const LAST_ERROR = '14 UNAVAILABLE: No connection established. Last error: ';

test('an alert refusing the agent’s certificate (as Go collectors send) is read as a rejected client certificate', () => {
  const err = tlsHandshakeError(
    new Error(
      `${LAST_ERROR}Error: 80EC02BD3B7F0000:error:0A000412:SSL routines:ssl3_read_bytes:tlsv13 alert bad certificate:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1601:SSL alert number 42\n. Resolution note: `,
    ),
    'flows.example:9999',
  );
  assert.equal(err?.problem, 'client-certificate-rejected');
  assert.match(
    err?.message ?? '',
    /^collector flows\.example:9999 refused the agent's client certificate \(alert bad certificate\); use one signed by a CA/,
  );
});

test('an expired collector certificate is read as untrusted', () => {
  const err = tlsHandshakeError(
    new Error(`${LAST_ERROR}Error: certificate has expired. Resolution note: `),
    'c:1',
  );
  assert.equal(err?.problem, 'server-certificate-untrusted');
});

test('errors that are no handshake failure are left to the caller', () => {
  for (const message of [
    `${LAST_ERROR}Error: connect ECONNREFUSED 127.0.0.1:9999. Resolution note: `,
    `${LAST_ERROR}Failed to connect (2026-12-02T06:45:18.685Z). Resolution note: `,
    '4 DEADLINE_EXCEEDED: Deadline exceeded after 10.001s',
  ]) {
    assert.equal(tlsHandshakeError(new Error(message), 'c:1'), undefined, message);
  }
});
