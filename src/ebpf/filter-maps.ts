/**
 * Installs a compiled filter (src/filter/program.ts) into the datapath's filter maps without
 * detaching: the new program and its prefixes go into the slot the programs are not reading, then
 * one write to `flowtap_filter_active` switches every later packet to it, and the old slot's
 * prefixes are removed. Mirrors the filter maps of bpf/flows.bpf.c.
 */
import { FILTER_MAX_SETS, FILTER_PREFIX_KEY_BYTES, type FilterProgram } from '../filter/program.ts';
import { kernelError } from './kernel-error.ts';
import { libbpf } from './libbpf.ts';

/** Kernel name of the two-slot program array. */
export const FILTER_PROGRAMS_MAP = 'flowtap_filter_programs';
/** Kernel name of the one-entry array saying which slot is in use. */
export const FILTER_ACTIVE_MAP = 'flowtap_filter_active';
/** Kernel name of the LPM trie of prefix sets. */
export const FILTER_PREFIXES_MAP = 'flowtap_filter_prefixes';

/** Set-id byte and prefix length bits the trie key spends before the address. */
const SET_ID_BITS = 8;

/** The datapath's filter maps, owned by the FlowObject that holds their fds. */
export class DatapathFilter {
  /** Slot the programs read (0 or 1), or -1 when no filter is installed. */
  #slot = -1;
  /** Trie keys written for the installed program, removed when it is replaced. */
  #prefixKeys: Buffer[] = [];
  #program: FilterProgram | undefined;

  constructor(
    private readonly programsFd: number,
    private readonly activeFd: number,
    private readonly prefixesFd: number,
  ) {}

  /** The program in use, undefined when every packet is counted. */
  get program(): FilterProgram | undefined {
    return this.#program;
  }

  /** Puts `program` in use (undefined: no filter) for every packet from now on. */
  install(program: FilterProgram | undefined): void {
    const lib = libbpf();
    const zero = Buffer.alloc(4);
    const active = Buffer.alloc(4);
    const oldKeys = this.#prefixKeys;
    if (program === undefined) {
      check(lib.mapUpdateElem(this.activeFd, zero, active, 0n), 'removing the filter');
      this.#slot = -1;
      this.#prefixKeys = [];
    } else {
      const slot = this.#slot === 0 ? 1 : 0;
      const keys = prefixKeys(program, slot);
      const one = Buffer.from([1]);
      const written: Buffer[] = [];
      try {
        for (const key of keys) {
          check(lib.mapUpdateElem(this.prefixesFd, key, one, 0n), 'writing the filter prefixes');
          written.push(key);
        }
        const slotKey = Buffer.alloc(4);
        slotKey.writeUInt32LE(slot, 0);
        check(lib.mapUpdateElem(this.programsFd, slotKey, program.code, 0n), 'writing the filter program');
      } catch (err) {
        for (const key of written) lib.mapDeleteElem(this.prefixesFd, key);
        throw err;
      }
      active.writeUInt32LE(slot + 1, 0);
      check(lib.mapUpdateElem(this.activeFd, zero, active, 0n), 'switching to the new filter');
      this.#slot = slot;
      this.#prefixKeys = keys;
    }
    this.#program = program;
    // A packet that read the old slot just before the switch may still test its prefixes; an
    // address test then misses, as it would a moment later under the new program.
    for (const key of oldKeys) lib.mapDeleteElem(this.prefixesFd, key);
  }
}

/** The trie keys of `program`'s prefix sets in slot `slot`. */
export function prefixKeys(program: FilterProgram, slot: number): Buffer[] {
  const keys: Buffer[] = [];
  program.prefixSets.forEach((prefixes, set) => {
    for (const prefix of prefixes) {
      const key = Buffer.alloc(FILTER_PREFIX_KEY_BYTES);
      key.writeUInt32LE(SET_ID_BITS + prefix.bits, 0);
      key[4] = slot * FILTER_MAX_SETS + set;
      key.set(prefix.bytes, 5);
      keys.push(key);
    }
  });
  return keys;
}

function check(result: number, operation: string): void {
  if (result < 0) throw kernelError(operation, result);
}
