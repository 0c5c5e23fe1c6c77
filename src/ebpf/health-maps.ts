/**
 * The kernel health map (bpf/datapath.h): two hash maps of struct flow_key -> struct flow_health
 * and the one-slot array of maps that points the programs at one of them. User space creates them
 * (every health program and the TC pair write the same maps, through bpf_map__reuse_fd) and
 * swaps them at each drain, as the flow maps are swapped: the swap waits out running programs,
 * so the drained map is written by nobody.
 */
import { V2_HEALTH_BYTES, V2_KEY_BYTES } from '../codec/v2-layout.ts';
import { kernelError } from './kernel-error.ts';
import { BPF_F_NO_PREALLOC, BpfMapType, libbpf, mapCreateOpts } from './libbpf.ts';

/** Kernel name of the one-slot array of maps, as the objects declare it. */
export const HEALTH_MAP = 'flowtap_health';

/** The two health maps and their slot; `close()` releases all three. */
export class HealthMaps {
  readonly #innerFds: [number, number];
  #active = 0;
  #closed = false;

  private constructor(
    innerFds: [number, number],
    /** Fd of the one-slot array of maps the programs look the health map up in. */
    readonly outerFd: number,
    /** Entries of each health map. */
    readonly maxEntries: number,
  ) {
    this.#innerFds = innerFds;
  }

  /** Creates both health maps of `maxEntries` entries and the slot, pointing at the first. */
  static create(maxEntries: number): HealthMaps {
    const lib = libbpf();
    const created: number[] = [];
    try {
      for (const name of ['flowtap_health_a', 'flowtap_health_b']) {
        const fd: number = lib.mapCreate(
          BpfMapType.HASH,
          name,
          V2_KEY_BYTES,
          V2_HEALTH_BYTES,
          maxEntries,
          mapCreateOpts({ mapFlags: BPF_F_NO_PREALLOC }),
        );
        if (fd < 0) throw kernelError(`creating the ${maxEntries}-entry health map`, fd);
        created.push(fd);
      }
      const outer: number = lib.mapCreate(
        BpfMapType.ARRAY_OF_MAPS,
        HEALTH_MAP,
        4,
        4,
        1,
        mapCreateOpts({ innerMapFd: created[0] }),
      );
      if (outer < 0) throw kernelError('creating the health map slot', outer);
      created.push(outer);
      const maps = new HealthMaps([created[0], created[1]], outer, maxEntries);
      maps.#install(0);
      return maps;
    } catch (err) {
      for (const fd of created) lib.close(fd);
      throw err;
    }
  }

  /**
   * Points the programs at the other health map and returns the fd of the one they wrote before;
   * the kernel returns only after running programs are done with it.
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
    if (result < 0) throw kernelError('switching the health map', result);
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
