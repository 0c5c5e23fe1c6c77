/**
 * The flow store's tables. Flows live in one table per UTC day of their last packet
 * (`flows_20261202`), all of one shape, behind the view `flows` that unions them: DuckDB has no
 * partition drop, and dropping a whole table is the one way retention and the disk budget free
 * space without rewriting rows (a DELETE only marks them). Days rather than hours because a view
 * over the ~170 tables of a week of hours costs DuckDB ~100 ms to plan, more than the query.
 *
 * Each address is stored as two UBIGINT halves of its 16 bytes in network order (IPv4 mapped):
 * `src_ip_hi` the first 8 bytes, `src_ip_lo` the last 8, so ordering by (hi, lo) sorts addresses
 * numerically. Fixed-width columns are filled a whole vector at a time and grouped on ~2× faster
 * than 16-byte BLOBs (which cost a call into DuckDB per cell and a string hash per row); their
 * text is computed by the view. HUGEINT/UHUGEINT would be the natural type, but DuckDB 1.5 reads
 * them back from disk ~40× slower than BLOBs (a GROUP BY over 10 M rows took 15 s, not 0.4 s).
 */
import { Direction, EtherType, transportProtocolName } from '../model/names.ts';

/** One stored column: name, DuckDB type, ClickHouse type, meaning. */
export interface StoreColumn {
  readonly name: string;
  /** Type in the DuckDB store. */
  readonly type: string;
  /**
   * Type in ClickHouse (clickhouse-schema.ts): times are UInt64 Unix nanoseconds there, as
   * ClickHouse 18.16 has no DateTime64.
   */
  readonly clickhouse: string;
  readonly doc: string;
}

/** Stored columns, in table order; the appender writes them in this order. */
export const STORE_COLUMNS = [
  { name: 'time_start', type: 'TIMESTAMP_NS', clickhouse: 'UInt64', doc: 'first packet (UTC)' },
  {
    name: 'time_end',
    type: 'TIMESTAMP_NS',
    clickhouse: 'UInt64',
    doc: 'last packet (UTC); decides the partition',
  },
  { name: 'etype', type: 'USMALLINT', clickhouse: 'UInt16', doc: 'Ethernet type (2048 IPv4, 34525 IPv6)' },
  { name: 'direction', type: 'UTINYINT', clickhouse: 'UInt8', doc: '0 ingress, 1 egress' },
  { name: 'proto', type: 'UTINYINT', clickhouse: 'UInt8', doc: 'IANA transport protocol number' },
  {
    name: 'src_ip_hi',
    type: 'UBIGINT',
    clickhouse: 'UInt64',
    doc: 'source address, first 8 bytes (network order, IPv4 mapped)',
  },
  {
    name: 'src_ip_lo',
    type: 'UBIGINT',
    clickhouse: 'UInt64',
    doc: 'source address, last 8 bytes (IPv4: the low 32 bits)',
  },
  { name: 'dst_ip_hi', type: 'UBIGINT', clickhouse: 'UInt64', doc: 'destination address, first 8 bytes' },
  { name: 'dst_ip_lo', type: 'UBIGINT', clickhouse: 'UInt64', doc: 'destination address, last 8 bytes' },
  { name: 'src_port', type: 'USMALLINT', clickhouse: 'UInt16', doc: 'source port (0 without one)' },
  { name: 'dst_port', type: 'USMALLINT', clickhouse: 'UInt16', doc: 'destination port' },
  { name: 'icmp_type', type: 'UTINYINT', clickhouse: 'UInt8', doc: 'ICMP type' },
  { name: 'icmp_code', type: 'UTINYINT', clickhouse: 'UInt8', doc: 'ICMP code' },
  { name: 'if_index', type: 'UINTEGER', clickhouse: 'UInt32', doc: 'interface index' },
  { name: 'interface', type: 'VARCHAR', clickhouse: 'String', doc: "interface name ('' when unknown)" },
  // BIGINT, not UBIGINT: DuckDB sums signed columns ~30% faster, and no counter nears 2^63.
  { name: 'bytes', type: 'BIGINT', clickhouse: 'Int64', doc: 'bytes counted' },
  { name: 'packets', type: 'BIGINT', clickhouse: 'Int64', doc: 'packets counted' },
  { name: 'tcp_flags', type: 'USMALLINT', clickhouse: 'UInt16', doc: 'OR of the TCP flags seen' },
  { name: 'dscp', type: 'UTINYINT', clickhouse: 'UInt8', doc: 'DSCP of the last packet' },
  { name: 'src_mac', type: 'UBIGINT', clickhouse: 'UInt64', doc: 'source MAC as a 48-bit number' },
  { name: 'dst_mac', type: 'UBIGINT', clickhouse: 'UInt64', doc: 'destination MAC as a 48-bit number' },
  // Schema 3 (issue 13): added to stores of schema 2 by ALTER TABLE, old rows reading the default.
  {
    name: 'agent_ip_hi',
    type: 'UBIGINT',
    clickhouse: 'UInt64',
    doc: "agent's address, first 8 bytes (0 before schema 3)",
  },
  { name: 'agent_ip_lo', type: 'UBIGINT', clickhouse: 'UInt64', doc: "agent's address, last 8 bytes" },
  {
    name: 'vlan_outer',
    type: 'USMALLINT',
    clickhouse: 'UInt16',
    doc: 'VLAN id of the outer 802.1Q/802.1ad tag (0: untagged)',
  },
  { name: 'vlan_inner', type: 'USMALLINT', clickhouse: 'UInt16', doc: 'VLAN id of the inner tag (0: none)' },
  {
    name: 'tunnel_type',
    type: 'UTINYINT',
    clickhouse: 'UInt8',
    doc: '0 none, 1 VXLAN, 2 Geneve, 3 GRE, 4 IP-in-IP',
  },
  { name: 'tunnel_id', type: 'UINTEGER', clickhouse: 'UInt32', doc: 'VXLAN/Geneve VNI or GRE key (0: none)' },
  {
    name: 'tunnel_src_hi',
    type: 'UBIGINT',
    clickhouse: 'UInt64',
    doc: 'outer source address, first 8 bytes',
  },
  { name: 'tunnel_src_lo', type: 'UBIGINT', clickhouse: 'UInt64', doc: 'outer source address, last 8 bytes' },
  {
    name: 'tunnel_dst_hi',
    type: 'UBIGINT',
    clickhouse: 'UInt64',
    doc: 'outer destination address, first 8 bytes',
  },
  {
    name: 'tunnel_dst_lo',
    type: 'UBIGINT',
    clickhouse: 'UInt64',
    doc: 'outer destination address, last 8 bytes',
  },
  {
    name: 'crossed',
    type: 'VARCHAR',
    clickhouse: 'String',
    doc: "interfaces crossed with their direction, first-seen order: 'veth1 in,br0 in,eth0 out' ('' when not known)",
  },
  {
    name: 'record_flags',
    type: 'UTINYINT',
    clickhouse: 'UInt8',
    doc: 'bit 0: bidirectional record (rev_* are meaningful)',
  },
  {
    name: 'rev_bytes',
    type: 'BIGINT',
    clickhouse: 'Int64',
    doc: 'bidirectional records: bytes of the reverse direction',
  },
  {
    name: 'rev_packets',
    type: 'BIGINT',
    clickhouse: 'Int64',
    doc: 'bidirectional records: packets of the reverse direction',
  },
  {
    name: 'rev_time_start',
    type: 'TIMESTAMP_NS',
    clickhouse: 'UInt64',
    doc: 'first packet of the reverse direction (epoch 0: none)',
  },
  {
    name: 'rev_time_end',
    type: 'TIMESTAMP_NS',
    clickhouse: 'UInt64',
    doc: 'last packet of the reverse direction (epoch 0: none)',
  },
  {
    name: 'rev_tcp_flags',
    type: 'USMALLINT',
    clickhouse: 'UInt16',
    doc: 'OR of the reverse direction TCP flags',
  },
  {
    name: 'rev_dscp',
    type: 'UTINYINT',
    clickhouse: 'UInt8',
    doc: 'DSCP of the reverse direction last packet',
  },
  // Schema 4 (issue 14): TCP health. A time not measured is 0 (a measured one never is: the
  // kernel keeps RTTs in microseconds and a handshake takes at least one).
  {
    name: 'rtt_last_ns',
    type: 'UBIGINT',
    clickhouse: 'UInt64',
    doc: 'latest smoothed RTT (tcp_sock srtt) of the flow, ns (0: not measured)',
  },
  { name: 'rtt_min_ns', type: 'UBIGINT', clickhouse: 'UInt64', doc: 'smallest smoothed RTT sampled, ns' },
  { name: 'rtt_max_ns', type: 'UBIGINT', clickhouse: 'UInt64', doc: 'largest smoothed RTT sampled, ns' },
  {
    name: 'handshake_rtt_ns',
    type: 'UBIGINT',
    clickhouse: 'UInt64',
    doc: 'SYN -> SYN-ACK (client) or SYN-ACK -> ACK (server), ns (0: not measured)',
  },
  { name: 'drop_bytes', type: 'BIGINT', clickhouse: 'Int64', doc: 'bytes of the flow the kernel dropped' },
  {
    name: 'drop_packets',
    type: 'BIGINT',
    clickhouse: 'Int64',
    doc: 'packets of the flow the kernel dropped',
  },
  {
    name: 'drop_latest_cause',
    type: 'UINTEGER',
    clickhouse: 'UInt32',
    doc: "the latest drop's reason: the kernel's enum skb_drop_reason value (0 without drops)",
  },
  {
    name: 'drop_latest_flags',
    type: 'USMALLINT',
    clickhouse: 'UInt16',
    doc: 'TCP flags of the latest dropped packet',
  },
  {
    name: 'drop_latest_state',
    type: 'UTINYINT',
    clickhouse: 'UInt8',
    doc: 'TCP state of its socket (TCP_ESTABLISHED = 1 ..., 0 unknown)',
  },
  { name: 'retrans_bytes', type: 'BIGINT', clickhouse: 'Int64', doc: 'bytes of retransmitted TCP segments' },
  { name: 'retrans_packets', type: 'BIGINT', clickhouse: 'Int64', doc: 'retransmitted TCP segments' },
  // Schema 5 (issue 15): DNS tracking. What a flow's DNS section did not hold is 0 or ''.
  {
    name: 'dns_id',
    type: 'USMALLINT',
    clickhouse: 'UInt16',
    doc: "id of the flow's latest DNS message (dns_record_flags bit 1)",
  },
  {
    name: 'dns_flags',
    type: 'USMALLINT',
    clickhouse: 'UInt16',
    doc: 'its flags word, the response code in the low 4 bits',
  },
  {
    name: 'dns_latency_ns',
    type: 'UBIGINT',
    clickhouse: 'UInt64',
    doc: 'response time - query time of the latest answered query, ns (0: none)',
  },
  {
    name: 'dns_name',
    type: 'VARCHAR',
    clickhouse: 'String',
    doc: "first question name of the latest DNS message: dotted, lower-cased ('' none)",
  },
  {
    name: 'dns_errno',
    type: 'UTINYINT',
    clickhouse: 'UInt8',
    doc: "netobserv's dns_errno: 2 a response without its query, 14 a header cut short, 22 malformed",
  },
  { name: 'dns_queries', type: 'UINTEGER', clickhouse: 'UInt32', doc: 'DNS queries of the flow' },
  {
    name: 'dns_answers',
    type: 'UINTEGER',
    clickhouse: 'UInt32',
    doc: 'DNS responses of the flow that matched a query',
  },
  {
    name: 'dns_unanswered',
    type: 'UINTEGER',
    clickhouse: 'UInt32',
    doc: 'DNS queries of the flow that got no response in time',
  },
  {
    name: 'dns_malformed',
    type: 'UINTEGER',
    clickhouse: 'UInt32',
    doc: 'DNS messages of the flow that did not parse',
  },
  {
    name: 'dns_record_flags',
    type: 'UTINYINT',
    clickhouse: 'UInt8',
    doc: 'DNS parts present: 1 id and flags, 2 name, 4 name cut at 64 bytes, 8 latency',
  },
] as const satisfies readonly StoreColumn[];

/** The first column schema 3 added (issue 13). */
export const FIRST_SCHEMA3_COLUMN = 'agent_ip_hi';
/** The first column schema 4 added (issue 14). */
export const FIRST_SCHEMA4_COLUMN = 'rtt_last_ns';
/** The first column schema 5 added (issue 15). */
export const FIRST_SCHEMA5_COLUMN = 'dns_id';

/** The first column each schema added over the one before; a store of an older schema gets the columns from it on. */
const FIRST_COLUMN_ADDED_BY: { readonly [schema: string]: string } = {
  '3': FIRST_SCHEMA3_COLUMN,
  '4': FIRST_SCHEMA4_COLUMN,
  '5': FIRST_SCHEMA5_COLUMN,
};

/** Default of a column added by a migration: what an old row reads. */
export function migrationDefault(column: StoreColumn): string {
  if (column.type === 'VARCHAR') return "''";
  if (column.type === 'TIMESTAMP_NS') return "'1970-01-01'::TIMESTAMP_NS";
  return '0';
}

/**
 * ALTER TABLE statements that bring the table `name` of a store of schema `fromVersion` (one of
 * {@link MIGRATABLE_SCHEMA_VERSIONS}) to {@link SCHEMA_VERSION}: the columns every later schema
 * added, with the defaults old rows read.
 */
export function migrationSql(name: string, fromVersion: string): string[] {
  const firstAdded = FIRST_COLUMN_ADDED_BY[String(Number(fromVersion) + 1)];
  const from = STORE_COLUMNS.findIndex((c) => c.name === firstAdded);
  if (from < 0) throw new RangeError(`no migration from store schema ${fromVersion}`);
  return STORE_COLUMNS.slice(from).map(
    (c) => `ALTER TABLE ${name} ADD COLUMN IF NOT EXISTS ${c.name} ${c.type} DEFAULT ${migrationDefault(c)}`,
  );
}

/** Index of each stored column by name. */
export const COLUMN = Object.fromEntries(STORE_COLUMNS.map((c, i) => [c.name, i])) as {
  readonly [K in (typeof STORE_COLUMNS)[number]['name']]: number;
};

/** The view every query reads: all partitions, with text forms of addresses and MACs. */
export const FLOWS_VIEW = 'flows';
/** An empty table of the partitions' shape, always in the view, so it exists before any flow. */
export const TEMPLATE_TABLE = 'flows_template';
/** Key/value facts about the database (its schema version). */
export const META_TABLE = 'flowtap_meta';
/**
 * Bumped when stored columns change. A store of schema 2, 3 or 4 is migrated when it opens
 * (columns added, see migrationSql); any other version is refused, not misread.
 */
export const SCHEMA_VERSION = '5';
/** The older schemas a store is migrated from. */
export const MIGRATABLE_SCHEMA_VERSIONS: readonly string[] = ['2', '3', '4'];

/** Length of one partition. */
export const PARTITION_MS = 86_400_000;
const PARTITION_NAME = /^flows_(\d{8})$/;

/** Name of the partition holding flows whose last packet is at `unixMs`. */
export function partitionName(unixMs: number): string {
  return `flows_${new Date(unixMs).toISOString().slice(0, 10).replaceAll('-', '')}`;
}

/** Start (Unix ms) of the partition `name`, or undefined when it is not a partition's name. */
export function partitionStartMs(name: string): number | undefined {
  const m = PARTITION_NAME.exec(name);
  if (!m) return undefined;
  const d = m[1];
  const ms = Date.parse(`${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}T00:00:00Z`);
  return Number.isNaN(ms) ? undefined : ms;
}

/** CREATE TABLE of a partition (or the template) named `name`. */
export function createTableSql(name: string): string {
  return `CREATE TABLE IF NOT EXISTS ${name} (${STORE_COLUMNS.map((c) => `${c.name} ${c.type}`).join(', ')})`;
}

/** Dotted quad of the low 32 bits of the UBIGINT `lo`. */
const V4_TEXT = [24, 16, 8, 0].map((shift) => `(lo >> ${shift}) & 255`).join(", '.', ");
/** `:g0:g1:...:g7:`, each group of `h` in lower-case hex without leading zeros. */
const V6_GROUPS = Array.from(
  { length: 8 },
  (_, i) => `coalesce(nullif(ltrim(lower(substr(h, ${i * 4 + 1}, 4)), '0'), ''), '0')`,
).join(" || ':' || ");
/** The longest run (first among equals) of 2+ zero groups of `p` (`:g0:...:g7:`) as `::`. */
const V6_COMPRESSED = `CASE ${[8, 7, 6, 5, 4, 3, 2]
  .map(
    (run) =>
      `WHEN contains(p, '${':0'.repeat(run)}:') THEN flowtap_v6_trim(regexp_replace(p, '${':0'.repeat(run)}:', '::'))`,
  )
  .join(' ')} ELSE trim(p, ':') END`;

/** `WHEN 6 THEN 'TCP' ...` for every protocol number that has a name. */
const PROTOCOL_CASES = Array.from({ length: 256 }, (_, p) => [p, transportProtocolName(p)] as const)
  .filter(([p, name]) => name !== String(p))
  .map(([p, name]) => `WHEN ${p} THEN '${name}'`)
  .join(' ');

/**
 * Macros the view uses: the text of a stored address exactly as `formatIp` prints it (IPv4 flows
 * dotted, IPv6 in RFC 5952 form), and a MAC's text. A macro's argument is copied wherever the
 * body names it, so each value used more than once is bound once as the parameter of a lambda
 * over a one-element list; copied, the address macro grew to a tree DuckDB took seconds to plan.
 */
export const MACRO_SQL = [
  `CREATE OR REPLACE MACRO flowtap_v6_trim(text) AS list_transform([text], r ->
     CASE WHEN r = '::' THEN r
          WHEN starts_with(r, '::') THEN left(r, -1)
          WHEN ends_with(r, '::') THEN substr(r, 2)
          ELSE substr(r, 2, length(r) - 2) END)[1]`,
  `CREATE OR REPLACE MACRO flowtap_v6_text(padded) AS list_transform([padded], p -> ${V6_COMPRESSED})[1]`,
  `CREATE OR REPLACE MACRO flowtap_ip_text(hi, lo, etype) AS
     CASE WHEN hi = 0 AND etype <> ${EtherType.IPV6} AND lo >> 32 IN (0, 65535) THEN concat(${V4_TEXT})
          WHEN hi = 0 AND lo >> 32 = 65535 THEN '::ffff:' || concat(${V4_TEXT})
          ELSE list_transform([printf('%016X%016X', hi, lo)], h ->
            flowtap_v6_text(':' || ${V6_GROUPS} || ':'))[1] END`,
  `CREATE OR REPLACE MACRO flowtap_proto_name(p) AS CASE p ${PROTOCOL_CASES} ELSE p::VARCHAR END`,
  `CREATE OR REPLACE MACRO flowtap_direction_name(d) AS
     CASE d WHEN ${Direction.INGRESS} THEN 'INGRESS' WHEN ${Direction.EGRESS} THEN 'EGRESS' ELSE 'UNKNOWN' END`,
  `CREATE OR REPLACE MACRO flowtap_mac_text(m) AS
     printf('%02x:%02x:%02x:%02x:%02x:%02x', (m >> 40) & 255, (m >> 32) & 255, (m >> 24) & 255,
            (m >> 16) & 255, (m >> 8) & 255, m & 255)`,
];

/** The `flows` view over `tables` (the template and every partition). */
export function viewSql(tables: readonly string[]): string {
  const union = tables.map((t) => `SELECT * FROM ${t}`).join(' UNION ALL ');
  return `CREATE OR REPLACE VIEW ${FLOWS_VIEW} AS
    SELECT * REPLACE (flowtap_mac_text(src_mac) AS src_mac, flowtap_mac_text(dst_mac) AS dst_mac),
      flowtap_ip_text(src_ip_hi, src_ip_lo, etype) AS src_addr,
      flowtap_ip_text(dst_ip_hi, dst_ip_lo, etype) AS dst_addr,
      flowtap_ip_text(agent_ip_hi, agent_ip_lo, 0) AS agent_ip,
      CASE WHEN tunnel_type = 0 THEN '' ELSE flowtap_ip_text(tunnel_src_hi, tunnel_src_lo, 0) END AS tunnel_src,
      CASE WHEN tunnel_type = 0 THEN '' ELSE flowtap_ip_text(tunnel_dst_hi, tunnel_dst_lo, 0) END AS tunnel_dst
    FROM (${union})`;
}
