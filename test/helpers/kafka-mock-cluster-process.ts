/**
 * A librdkafka mock cluster in its own process, for tests that need topics with a chosen number of
 * partitions (kcat's mock cluster auto-creates topics with 4, and the mock of Debian's librdkafka
 * 2.0 answers no CreateTopics). Loads librdkafka.so.1 with koffi (already flowtap's FFI) and calls
 * the mock API: argv = broker count, then `topic:partitions` pairs. Prints `brokers HOST:PORT,...`
 * and lives until killed.
 */
import koffi from 'koffi';

const RD_KAFKA_PRODUCER = 0;
const ERRSTR_BYTES = 512;

const lib = koffi.load('librdkafka.so.1');
const rdKafkaNew = lib.func('void *rd_kafka_new(int type, void *conf, char *errstr, size_t errstr_size)');
const confNew = lib.func('void *rd_kafka_conf_new()');
const confSet = lib.func(
  'int rd_kafka_conf_set(void *conf, const char *name, const char *value, char *errstr, size_t errstr_size)',
);
const mockClusterOf = lib.func('void *rd_kafka_handle_mock_cluster(void *rk)');
const poll = lib.func('int rd_kafka_poll(void *rk, int timeout_ms)');
/** How often the client's events are served: left unserved, the process crashed within seconds. */
const POLL_INTERVAL_MS = 100;
const mockBootstraps = lib.func('const char *rd_kafka_mock_cluster_bootstraps(void *mcluster)');
const mockTopicCreate = lib.func(
  'int rd_kafka_mock_topic_create(void *mcluster, const char *topic, int partition_cnt, int replication_factor)',
);

const [brokersText, ...topics] = process.argv.slice(2);
const brokers = Number(brokersText);
const errstr = Buffer.alloc(ERRSTR_BYTES);
// As kcat -b mock does: the client creates and owns the mock cluster (test.mock.num.brokers).
const conf = confNew();
if (confSet(conf, 'test.mock.num.brokers', String(brokers), errstr, ERRSTR_BYTES) !== 0) {
  throw new Error(`rd_kafka_conf_set failed: ${errstr.toString('latin1').replace(/\0.*$/s, '')}`);
}
const handle = rdKafkaNew(RD_KAFKA_PRODUCER, conf, errstr, ERRSTR_BYTES);
if (!handle) throw new Error(`rd_kafka_new failed: ${errstr.toString('latin1').replace(/\0.*$/s, '')}`);
const cluster = mockClusterOf(handle);
if (!cluster) throw new Error('rd_kafka_handle_mock_cluster found no mock cluster');
for (const spec of topics) {
  const [topic, partitions] = spec.split(':');
  const err = mockTopicCreate(cluster, topic, Number(partitions), Math.min(brokers, 3));
  if (err !== 0) throw new Error(`rd_kafka_mock_topic_create(${topic}) failed: ${err}`);
}
process.stdout.write(`brokers ${mockBootstraps(cluster)}\n`);
setInterval(() => poll(handle, 0), POLL_INTERVAL_MS);
