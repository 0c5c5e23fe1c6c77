/**
 * What an IPFIX collector keeps per exporter (RFC 7011 §8): a transport session (a TCP
 * connection, or the UDP messages from one address and port) holds observation domains, and
 * templates are scoped to one domain of one session. Each domain also gathers the rows decoded
 * from it into its own batch, with the interface names its records carried: interface indexes
 * are an exporter's own, so one batch never mixes two exporters' names for one index.
 */
import { RecordBatchBuilder } from '../../codec/record-batch.ts';
import type { InterfaceNames } from '../../model/interfaces.ts';
import type { TemplatePlan } from './field-plan.ts';

/** Rows a domain's batch starts with room for (it doubles as needed). */
const INITIAL_BATCH_ROWS = 256;
/** Interface names kept per domain at most; later names are left out (the rows keep their index). */
export const MAX_NAMES_PER_DOMAIN = 4096;

/**
 * Interface names of one batch, by the exporter's interface index. A name once set stays for
 * the batch: a renamed interface starts a new batch (see {@link ObservationDomain.rename}).
 */
export class BatchInterfaceNames implements InterfaceNames {
  readonly #names = new Map<number, string>();
  /** UTF-8 bytes of each name, compared in place with a record's bytes instead of decoding them. */
  readonly #bytes = new Map<number, Uint8Array>();

  /** Names known. */
  get size(): number {
    return this.#names.size;
  }

  nameOf(ifIndex: number): string {
    return this.#names.get(ifIndex) ?? '';
  }

  /** The bytes of the name of `ifIndex`, or undefined. */
  bytesOf(ifIndex: number): Uint8Array | undefined {
    return this.#bytes.get(ifIndex);
  }

  /** Sets the name of `ifIndex` to the UTF-8 bytes `m[start, start + length)`. */
  set(ifIndex: number, m: Buffer, start: number, length: number): void {
    this.#bytes.set(ifIndex, Uint8Array.prototype.slice.call(m, start, start + length));
    this.#names.set(ifIndex, m.toString('utf8', start, start + length));
  }

  /** A copy for the next batch, every name but `ifIndex`'s. */
  without(ifIndex: number): BatchInterfaceNames {
    const next = new BatchInterfaceNames();
    for (const [index, name] of this.#names) {
      if (index === ifIndex) continue;
      next.#names.set(index, name);
      next.#bytes.set(index, this.#bytes.get(index) as Uint8Array);
    }
    return next;
  }
}

/** One observation domain of one exporter session. */
export class ObservationDomain {
  /** Data templates by id. */
  readonly templates = new Map<number, TemplatePlan>();
  /** Options templates by id. */
  readonly optionsTemplates = new Map<number, TemplatePlan>();
  /** The exporter's systemInitTimeMilliseconds (from an options record), NaN until known. */
  systemInitMs = Number.NaN;
  /** Sequence number the next message should carry; -1 when unknown. */
  nextSequence = -1;
  #names = new BatchInterfaceNames();
  #rows: RecordBatchBuilder | undefined;

  constructor(
    readonly session: ExporterSession,
    readonly observationDomainId: number,
  ) {}

  /** The batch being filled (created on first use). */
  get rows(): RecordBatchBuilder {
    this.#rows ??= new RecordBatchBuilder(INITIAL_BATCH_ROWS, this.#names);
    return this.#rows;
  }

  /** Rows waiting in the batch. */
  get pendingRows(): number {
    return this.#rows?.count ?? 0;
  }

  /** Names of the batch being filled. */
  get names(): BatchInterfaceNames {
    return this.#names;
  }

  /**
   * Hands out the rows gathered so far (undefined when none); the next rows go to a new batch
   * with the same names. A full batch keeps its builder for the next one; otherwise (a flush on
   * time) the builder is dropped, so an idle domain holds no row buffer.
   */
  takeBatch(keepBuilder = false) {
    const rows = this.#rows;
    if (!keepBuilder) this.#rows = undefined;
    if (rows === undefined || rows.count === 0) return undefined;
    return rows.finish();
  }

  /**
   * Interface `ifIndex` has a new name: the rows so far keep the old one, so they are handed
   * out (returned) and the next batch starts with names that leave the old one out.
   */
  rename(ifIndex: number) {
    const batch = this.takeBatch();
    this.#names = this.#names.without(ifIndex);
    return batch;
  }

  /** Template fields this domain holds (for the source's template budget). */
  templateFields(): number {
    let n = 0;
    for (const t of this.templates.values()) n += t.kinds.length;
    for (const t of this.optionsTemplates.values()) n += t.kinds.length;
    return n;
  }
}

/** One transport session: a TCP connection, or one UDP exporter address and port. */
export class ExporterSession {
  readonly domains = new Map<number, ObservationDomain>();
  /** Time (ms) of the last message, for idle UDP sessions to be forgotten. */
  lastMessageMs = 0;

  constructor(
    /** Display form of the peer (`address:port`), for logs. */
    readonly peer: string,
    /**
     * The exporter's address as 16 bytes (IPv4-mapped for IPv4): the agent IP of records whose
     * template has no exporterIPv4Address/exporterIPv6Address.
     */
    readonly agentIp: Uint8Array,
  ) {}

  /** The domain `id`, created when `create` and not known yet; undefined otherwise. */
  domain(id: number, create: boolean): ObservationDomain | undefined {
    let domain = this.domains.get(id);
    if (domain === undefined && create) {
      domain = new ObservationDomain(this, id);
      this.domains.set(id, domain);
    }
    return domain;
  }
}
