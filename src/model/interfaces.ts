/** Interface index → name, shared by the sources that learn names and the printers that show them. */

/** Resolves an interface index to the name a user knows it by. */
export interface InterfaceNames {
  /** The name last known for `ifIndex`, or '' when it was never seen. */
  nameOf(ifIndex: number): string;
}

/**
 * Names learnt by capture sources. A name is kept after its interface goes away, so flows
 * evicted later still print the name they were captured under.
 */
export class InterfaceRegistry implements InterfaceNames {
  readonly #names = new Map<number, string>();

  /** Records that `ifIndex` is called `name` (replacing an older name for a reused index). */
  set(ifIndex: number, name: string): void {
    this.#names.set(ifIndex, name);
  }

  nameOf(ifIndex: number): string {
    return this.#names.get(ifIndex) ?? '';
  }

  /** Every known index and name. */
  entries(): IterableIterator<[number, string]> {
    return this.#names.entries();
  }
}

/** Resolves no interface; for inputs that carry none (v1 files). */
export const NO_INTERFACE_NAMES: InterfaceNames = { nameOf: () => '' };
