/**
 * Service names of ports (`443` → `https`) from the IANA registry shipped with flowtap
 * (src/model/iana-services.ts), and the one name a flow is known by in the table and the web
 * view: its ICMP type, else the name of its destination port, else of its source port.
 */

import { IANA_SERVICES } from './iana-services.ts';
import { icmpName, isIcmpProtocol } from './icmp.ts';
import { IpProto } from './names.ts';

/** Port → name, by transport protocol number; built at the first lookup. */
let tables: Map<number, Map<number, string>> | undefined;

const PROTOCOL_NUMBERS: Readonly<Record<string, number>> = {
  tcp: IpProto.TCP,
  udp: IpProto.UDP,
  sctp: IpProto.SCTP,
};

function buildTables(): Map<number, Map<number, string>> {
  const built = new Map<number, Map<number, string>>(
    Object.values(PROTOCOL_NUMBERS).map((proto) => [proto, new Map<number, string>()]),
  );
  for (const line of IANA_SERVICES.split('\n')) {
    const [port, name, protocols] = line.split(' ');
    for (const protocol of protocols.split(',')) {
      const byPort = built.get(PROTOCOL_NUMBERS[protocol]);
      if (byPort && !byPort.has(Number(port))) byPort.set(Number(port), name);
    }
  }
  return built;
}

/** The IANA service name of `port` for transport protocol `proto` (6, 17, 132); undefined when none. */
export function serviceName(proto: number, port: number): string | undefined {
  tables ??= buildTables();
  return tables.get(proto)?.get(port);
}

/**
 * What a flow is, in one word: the ICMP type name for ICMP flows, else the service of the
 * destination port, else that of the source port (the reply of a request); '' when none is known.
 */
export function flowServiceName(flow: {
  proto: number;
  srcPort: number;
  dstPort: number;
  icmpType: number;
  icmpCode: number;
}): string {
  if (isIcmpProtocol(flow.proto)) return icmpName(flow.proto, flow.icmpType, flow.icmpCode);
  if (flow.dstPort === 0 && flow.srcPort === 0) return '';
  return serviceName(flow.proto, flow.dstPort) ?? serviceName(flow.proto, flow.srcPort) ?? '';
}
