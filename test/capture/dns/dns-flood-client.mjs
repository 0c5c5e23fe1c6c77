// Sends COUNT UDP DNS queries for NAME with random ids to HOST:PORT, a burst at a time, prints the
// ids in the order sent (comma-separated) and exits.
// Run inside a test namespace by test/capture/dns/dns-read.test.ts: `node dns-flood-client.mjs HOST PORT COUNT NAME`.
import { createSocket } from 'node:dgram';

const [host, port, count, name] = process.argv.slice(2);
const total = Number(count);
const BURST = 100;
const BURST_INTERVAL_MS = 2;
const question = Buffer.concat([
  ...name.split('.').map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label)])),
  Buffer.from([0, 0, 1, 0, 1]),
]);
const socket = createSocket('udp4');
let sent = 0;
let done = 0;
const ids = [];

function query() {
  const header = Buffer.alloc(12);
  const id = Math.floor(Math.random() * 65536);
  ids.push(id);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2);
  header.writeUInt16BE(1, 4);
  return Buffer.concat([header, question]);
}

function burst() {
  for (let k = 0; k < BURST && sent < total; k++, sent++) {
    socket.send(query(), Number(port), host, () => {
      if (++done === total) {
        socket.close();
        process.stdout.write(ids.join(','));
      }
    });
  }
  if (sent < total) setTimeout(burst, BURST_INTERVAL_MS);
}
burst();
