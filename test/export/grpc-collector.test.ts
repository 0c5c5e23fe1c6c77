/** The pbflow collector facing bad clients: it answers each with an error and keeps serving. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { create, toBinary } from '@bufbuild/protobuf';
import { Client, credentials, Metadata, type ServiceError, status } from '@grpc/grpc-js';
import type { RecordBatch } from '../../src/codec/record-batch.ts';
import { MalformedMessageError } from '../../src/errors.ts';
import { COLLECTOR_SEND_PATH, startCollector } from '../../src/export/grpc-collector.ts';
import { IPSchema, NetworkSchema, RecordSchema, RecordsSchema } from '../../src/export/pbflow/gen/flow_pb.ts';
import type { Flow } from '../../src/model/flow.ts';

type TestContext = { after: (fn: () => unknown) => void };

async function collectorWithClient(t: TestContext, maxReceiveMessageBytes?: number) {
  const received: Flow[][] = [];
  const errors: Error[] = [];
  const collector = await startCollector({
    port: 0,
    maxReceiveMessageBytes,
    onRecords: (flows) => {
      received.push(flows);
    },
    onError: (err) => errors.push(err),
  });
  t.after(() => collector.close(0));
  const client = new Client(`127.0.0.1:${collector.port}`, credentials.createInsecure());
  t.after(() => client.close());
  const send = rawSender(client);
  return { received, errors, send };
}

function validRequest(): Uint8Array {
  return toBinary(
    RecordsSchema,
    create(RecordsSchema, { entries: [create(RecordSchema, { ethProtocol: 0x0800, interface: 'eth0' })] }),
  );
}

/** Sends raw bytes as a Send request through `client`; resolves with the status code. */
function rawSender(client: Client): (bytes: Uint8Array) => Promise<number> {
  return (bytes) =>
    new Promise<number>((resolve) => {
      client.makeUnaryRequest(
        COLLECTOR_SEND_PATH,
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.from(bytes),
        new Metadata(),
        {},
        (err: ServiceError | null) => resolve(err ? err.code : status.OK),
      );
    });
}

test('garbage bytes are answered INVALID_ARGUMENT and the next good request is served', async (t) => {
  const { received, errors, send } = await collectorWithClient(t);
  assert.equal(await send(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f])), status.INVALID_ARGUMENT);
  assert.ok(errors[0] instanceof MalformedMessageError);
  assert.equal(await send(validRequest()), status.OK);
  assert.equal(received.length, 1);
  assert.equal(received[0][0].interface, 'eth0');
});

test('an IPv6 address that is not 16 bytes makes the message malformed', async (t) => {
  const { received, errors, send } = await collectorWithClient(t);
  const bad = create(RecordsSchema, {
    entries: [
      create(RecordSchema, {
        network: create(NetworkSchema, {
          srcAddr: create(IPSchema, { ipFamily: { case: 'ipv6', value: new Uint8Array(5) } }),
        }),
      }),
    ],
  });
  assert.equal(await send(toBinary(RecordsSchema, bad)), status.INVALID_ARGUMENT);
  assert.match(errors[0].message, /src_addr\.ipv6 has 5 bytes/);
  assert.equal(received.length, 0);
});

test('a message above the size bound is answered RESOURCE_EXHAUSTED and the next good request is served', async (t) => {
  const { received, send } = await collectorWithClient(t, 1024);
  const oversize = toBinary(
    RecordsSchema,
    create(RecordsSchema, {
      entries: Array.from({ length: 100 }, () => create(RecordSchema, { interface: 'x'.repeat(20) })),
    }),
  );
  assert.ok(oversize.length > 1024);
  assert.equal(await send(oversize), status.RESOURCE_EXHAUSTED);
  assert.equal(await send(validRequest()), status.OK);
  assert.equal(received.length, 1);
});

test('a consumer that throws is answered INTERNAL and reported', async (t) => {
  const errors: Error[] = [];
  const collector = await startCollector({
    port: 0,
    onRecords: () => {
      throw new Error('disk full');
    },
    onError: (err) => errors.push(err),
  });
  t.after(() => collector.close(0));
  const client = new Client(`127.0.0.1:${collector.port}`, credentials.createInsecure());
  t.after(() => client.close());
  const code = await new Promise<number>((resolve) => {
    client.makeUnaryRequest(
      COLLECTOR_SEND_PATH,
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.from(validRequest()),
      new Metadata(),
      {},
      (err: ServiceError | null) => resolve(err ? err.code : status.OK),
    );
  });
  assert.equal(code, status.INTERNAL);
  assert.equal(errors[0].message, 'disk full');
});

test('with onBatch each request arrives as one batch and garbage is still answered INVALID_ARGUMENT', async (t) => {
  const batches: RecordBatch[] = [];
  const errors: Error[] = [];
  const collector = await startCollector({
    port: 0,
    onBatch: (batch) => {
      batches.push(batch);
    },
    onError: (err) => errors.push(err),
  });
  t.after(() => collector.close(0));
  const client = new Client(`127.0.0.1:${collector.port}`, credentials.createInsecure());
  t.after(() => client.close());
  const send = rawSender(client);
  assert.equal(await send(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f])), status.INVALID_ARGUMENT);
  assert.ok(errors[0] instanceof MalformedMessageError);
  assert.equal(await send(validRequest()), status.OK);
  assert.equal(batches.length, 1);
  assert.equal(batches[0].count, 1);
  assert.equal(batches[0].flow(0).interface, 'eth0');
  assert.equal(batches[0].flow(0).etype, 0x0800);
});
