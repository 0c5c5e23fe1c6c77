/**
 * Lists the tc filters of one clsact direction of an interface (an RTM_GETTFILTER dump), so
 * attach and detach can tell flowtap's own filters from everyone else's: libbpf's tc API can
 * only ask about a handle and priority it already knows.
 */
import { attributes, closeFd, dump, openRouteSocket } from '../netlink/socket.ts';
import { TcAttachPoint } from './libbpf.ts';

const RTM_NEWTFILTER = 44;
const RTM_GETTFILTER = 46;
const TCMSG_BYTES = 20;
const TCA_KIND = 1;
const TCA_OPTIONS = 2;
const TCA_BPF_NAME = 7;
const TCA_BPF_ID = 11;
/** TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS / TC_H_MIN_EGRESS). */
const CLSACT_INGRESS_PARENT = 0xfffffff2;
const CLSACT_EGRESS_PARENT = 0xfffffff3;

/** One filter on a clsact hook. */
export interface TcFilter {
  /** Filter handle (flowtap's: the owning process id). */
  handle: number;
  /** Filter priority. */
  priority: number;
  /** Classifier kind, e.g. `bpf`, `u32`, `flower`. */
  kind: string;
  /** For `bpf` filters: the name tc shows (libbpf's is `<program>:[<id>]`), else ''. */
  name: string;
  /** For `bpf` filters: the program id, else 0. */
  programId: number;
}

/**
 * Every filter at `point` (TcAttachPoint.INGRESS or EGRESS) of `ifIndex`; empty when the
 * interface has no clsact qdisc. Throws when the interface is gone or the dump is refused.
 */
export function listTcFilters(ifIndex: number, point: number): TcFilter[] {
  const request = Buffer.alloc(TCMSG_BYTES);
  request.writeInt32LE(ifIndex, 4);
  request.writeUInt32LE(point === TcAttachPoint.INGRESS ? CLSACT_INGRESS_PARENT : CLSACT_EGRESS_PARENT, 12);
  const fd = openRouteSocket();
  try {
    const filters: TcFilter[] = [];
    let messages: ReturnType<typeof dump>;
    try {
      messages = dump(fd, RTM_GETTFILTER, request, `listing the tc filters of interface ${ifIndex}`);
    } catch (err) {
      // No clsact qdisc: the kernel refuses a dump of its filters (EINVAL), and there are none.
      if ((err as { errno?: number }).errno === 22) return [];
      throw err;
    }
    for (const { type, payload } of messages) {
      if (type !== RTM_NEWTFILTER || payload.length < TCMSG_BYTES) continue;
      const handle = payload.readUInt32LE(8);
      if (handle === 0) continue; // the entry that opens each priority's list, not a filter
      const attrs = attributes(payload, TCMSG_BYTES);
      const kind = attrs.get(TCA_KIND)?.toString('latin1').replace(/\0.*$/s, '') ?? '';
      const options = attrs.get(TCA_OPTIONS);
      const bpf = kind === 'bpf' && options ? attributes(options) : undefined;
      filters.push({
        handle,
        priority: payload.readUInt32LE(16) >>> 16,
        kind,
        name: bpf?.get(TCA_BPF_NAME)?.toString('latin1').replace(/\0.*$/s, '') ?? '',
        programId: bpf?.get(TCA_BPF_ID)?.readUInt32LE(0) ?? 0,
      });
    }
    return filters;
  } finally {
    closeFd(fd);
  }
}
