/**
 * Wire compatibility with the reference: the bytes the grpc exporter puts on the wire, caught by a
 * bare grpc-js server (no flowtap code on the receiving side) and decoded with the schema
 * generated from the reference's flow.proto.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fromBinary } from '@bufbuild/protobuf';
import { Server, ServerCredentials, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { recordBatchOf } from '../../src/codec/record-batch.ts';
import { GrpcExporter } from '../../src/export/grpc.ts';
import { Direction, RecordsSchema } from '../../src/export/pbflow/gen/flow_pb.ts';
import { InterfaceRegistry } from '../../src/model/interfaces.ts';
import { makeFlow } from '../helpers/flows.ts';

test('the request is a pbflow.Records on /pbflow.Collector/Send with the reference encodings', async (t) => {
  let resolveRequest: (bytes: Buffer) => void;
  const request = new Promise<Buffer>((resolve) => {
    resolveRequest = resolve;
  });
  const server = new Server();
  server.addService(
    {
      Send: {
        path: '/pbflow.Collector/Send',
        requestStream: false,
        responseStream: false,
        requestSerialize: (b: Buffer) => b,
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: () => Buffer.alloc(0),
        responseDeserialize: (b: Buffer) => b,
      },
    },
    {
      Send: (call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) => {
        resolveRequest(call.request);
        callback(null, Buffer.alloc(0));
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  t.after(() => server.forceShutdown());

  const names = new InterfaceRegistry();
  names.set(7, 'eth0');
  const exporter = new GrpcExporter({ host: '127.0.0.1', port });
  t.after(() => exporter.stop(0));
  exporter.export(
    recordBatchOf(
      [
        makeFlow({
          srcMac: '11:22:33:44:55:66',
          srcAddr: '10.0.0.1',
          dstAddr: '192.168.0.255',
          bytes: 2 ** 40,
          packets: 9,
          ifIndex: 7,
          timeFlowStartNs: 1_647_502_932_414_480_074n,
          timeFlowEndNs: 1_647_502_933_000_000_001n,
        }),
        makeFlow({ etype: 0x86dd, direction: 0, srcAddr: '2001:db8::1', dstAddr: 'fe80::2', proto: 17 }),
      ],
      names,
    ),
  );

  const [v4, v6] = fromBinary(RecordsSchema, await request).entries;
  assert.equal(v4.ethProtocol, 0x0800);
  assert.equal(v4.direction, Direction.EGRESS);
  assert.deepEqual(v4.network?.srcAddr?.ipFamily, { case: 'ipv4', value: 0x0a000001 });
  assert.deepEqual(v4.network?.dstAddr?.ipFamily, { case: 'ipv4', value: 0xc0a800ff });
  assert.equal(v4.dataLink?.srcMac, 0x112233445566n);
  assert.equal(v4.dataLink?.dstMac, 0x020000000002n);
  assert.equal(v4.timeFlowStart?.seconds, 1_647_502_932n);
  assert.equal(v4.timeFlowStart?.nanos, 414_480_074);
  assert.equal(v4.timeFlowEnd?.seconds, 1_647_502_933n);
  assert.equal(v4.timeFlowEnd?.nanos, 1);
  assert.deepEqual(
    { ...v4.transport },
    { $typeName: 'pbflow.Transport', srcPort: 1234, dstPort: 80, protocol: 6 },
  );
  assert.equal(v4.bytes, 2n ** 40n);
  assert.equal(v4.packets, 9n);
  assert.equal(v4.interface, 'eth0');

  assert.equal(v6.ethProtocol, 0x86dd);
  assert.equal(v6.direction, Direction.INGRESS);
  const src = v6.network?.srcAddr?.ipFamily;
  assert.equal(src?.case, 'ipv6');
  assert.deepEqual(Buffer.from(src.value as Uint8Array).toString('hex'), '20010db8000000000000000000000001');
  assert.equal(v6.transport?.protocol, 17);
});
