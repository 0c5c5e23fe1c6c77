import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { pino } from 'pino';
import { expectedNetworkProblem, warnNetworkFailure } from '../../src/agent/network-problems.ts';
import { ExportError } from '../../src/errors.ts';

function recordingLogger(level: string) {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level }, sink), lines };
}

function refused(): Error {
  return Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:4739'), { code: 'ECONNREFUSED' });
}

test('refused, timed out, unreachable and gRPC unavailable errors are expected network problems, also as causes', () => {
  assert.equal(expectedNetworkProblem(refused()), 'connection refused');
  assert.equal(expectedNetworkProblem(new Error('wrapped', { cause: refused() })), 'connection refused');
  assert.equal(expectedNetworkProblem(Object.assign(new Error('t'), { code: 'ETIMEDOUT' })), 'timed out');
  assert.equal(
    expectedNetworkProblem(Object.assign(new Error('u'), { code: 'EHOSTUNREACH' })),
    'host unreachable',
  );
  assert.equal(
    expectedNetworkProblem(Object.assign(new Error('14 UNAVAILABLE'), { code: 14, details: 'x' })),
    'unavailable',
  );
  assert.equal(expectedNetworkProblem(new TypeError('cannot read properties of undefined')), undefined);
});

test('an expected network failure is one warning line naming the target and what to do, its stack only at debug', () => {
  const info = recordingLogger('info');
  warnNetworkFailure(info.logger, refused(), 'IPFIX collector', '127.0.0.1:4739', 'retrying with backoff');
  assert.equal(info.lines.length, 1);
  assert.equal(
    info.lines[0].msg,
    'IPFIX collector: connection refused at 127.0.0.1:4739; retrying with backoff',
  );
  assert.equal(info.lines[0].err, undefined, 'no error object, so no stack');

  const debug = recordingLogger('debug');
  warnNetworkFailure(debug.logger, refused(), 'IPFIX collector', '127.0.0.1:4739', 'retrying with backoff');
  assert.equal(debug.lines.length, 2);
  assert.match(String((debug.lines[1].err as { stack: string }).stack), /ECONNREFUSED/);
});

test('an unexpected failure keeps the whole error', () => {
  const { logger, lines } = recordingLogger('info');
  warnNetworkFailure(logger, new TypeError('bug'), 'gRPC collector', 'c:1', 'retrying');
  assert.equal(lines.length, 1);
  assert.match(String((lines[0].err as { stack: string }).stack), /TypeError: bug/);
});

test('a flowtap error is one line with its message, as an expected problem', () => {
  const { logger, lines } = recordingLogger('info');
  const err = new ExportError('grpc', 'stopped before the collector acknowledged the batch');
  warnNetworkFailure(logger, err, 'grpc export failing', '', 'its batches are counted as failed');
  assert.equal(lines.length, 1);
  assert.equal(
    lines[0].msg,
    'grpc export failing: grpc export: stopped before the collector acknowledged the batch; its batches are counted as failed',
  );
  assert.equal(lines[0].err, undefined);
});
