/**
 * A kernel section map (bpf/datapath.h's health map, bpf/dns.h's DNS map): two hash maps of
 * struct flow_key -> a row section, and the one-slot array of maps that points the programs at one
 * of them. User space creates them (every program that writes the section gets the same maps,
 * through bpf_map__reuse_fd) and swaps them at each drain, as the flow maps are swapped: the swap
 * waits out running programs, so the drained map is written by nobody.
 */
import { V2_DNS_BYTES, V2_HEALTH_BYTES, V2_KEY_BYTES } from '../codec/v2-layout.ts';
import { kernelError } from './kernel-error.ts';
import { BPF_F_NO_PREALLOC, BpfMapType, libbpf, mapCreateOpts } from './libbpf.ts';

/** Kernel name of the health map's one-slot array of maps, as the objects declare it. */
export const HEALTH_MAP = 'flowtap_health';
/** Kernel name of the DNS map's one-slot array of maps (bpf/dns.h). */
export const DNS_MAP = 'flowtap_dns';

/** Which section a pair of maps holds. */
export interface SectionKind {
  /** Kernel name of the slot; the two maps are named after it with `_a` and `_b`. */
  readonly slotName: string;
  /** Bytes of one value: the section's struct. */
  readonly valueBytes: number;
  /** What the maps hold, for error messages (`health`, `DNS`). */
  readonly what: string;
}

/** struct flow_health by flow. */
export const HEALTH_SECTION: SectionKind = {
  slotName: HEALTH_MAP,
  valueBytes: V2_HEALTH_BYTES,
  what: 'health',
};
/** struct flow_dns by flow. */
export const DNS_SECTION: SectionKind = { slotName: DNS_MAP, valueBytes: V2_DNS_BYTES, what: 'DNS' };

/** The two maps of a section and their slot; `close()` releases all three. */
export class SectionMaps {
  readonly #innerFds: [number, number];
  #active = 0;
  #closed = false;

  private constructor(
    /** The section held. */
    readonly kind: SectionKind,
    innerFds: [number, number],
    /** Fd of the one-slot array of maps the programs look the map up in. */
    readonly outerFd: number,
    /** Entries of each map. */
    readonly maxEntries: number,
  ) {
    this.#innerFds = innerFds;
  }

  /** Creates both maps of `maxEntries` entries for `kind` and the slot, pointing at the first. */
  static create(kind: SectionKind, maxEntries: number): SectionMaps {
    const lib = libbpf();
    const created: number[] = [];
    try {
      for (const name of [`${kind.slotName}_a`, `${kind.slotName}_b`]) {
        const fd: number = lib.mapCreate(
          BpfMapType.HASH,
          name,
          V2_KEY_BYTES,
          kind.valueBytes,
          maxEntries,
          mapCreateOpts({ mapFlags: BPF_F_NO_PREALLOC }),
        );
        if (fd < 0) throw kernelError(`creating the ${maxEntries}-entry ${kind.what} map`, fd);
        created.push(fd);
      }
      const outer: number = lib.mapCreate(
        BpfMapType.ARRAY_OF_MAPS,
        kind.slotName,
        4,
        4,
        1,
        mapCreateOpts({ innerMapFd: created[0] }),
      );
      if (outer < 0) throw kernelError(`creating the ${kind.what} map slot`, outer);
      created.push(outer);
      const maps = new SectionMaps(kind, [created[0], created[1]], outer, maxEntries);
      maps.#install(0);
      return maps;
    } catch (err) {
      for (const fd of created) lib.close(fd);
      throw err;
    }
  }

  /**
   * Points the programs at the other map and returns the fd of the one they wrote before; the
   * kernel returns only after running programs are done with it.
   */
  swap(): number {
    const previous = this.#active;
    this.#install(1 - previous);
    return this.#innerFds[previous];
  }

  #install(index: number): void {
    const key = Buffer.alloc(4);
    const value = Buffer.alloc(4);
    value.writeUInt32LE(this.#innerFds[index], 0);
    const result: number = libbpf().mapUpdateElem(this.outerFd, key, value, 0n);
    if (result < 0) throw kernelError(`switching the ${this.kind.what} map`, result);
    this.#active = index;
  }

  /** Releases the maps (programs holding them keep their own references until they close). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const lib = libbpf();
    lib.close(this.outerFd);
    for (const fd of this.#innerFds) lib.close(fd);
  }
}
