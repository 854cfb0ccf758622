/**
 * Buffers kept for the next user of the same kind. Memory written for the
 * first time costs a page fault per 4 KiB (about 10 µs each on the machines
 * measured), so a memtable, a flush's entries and a WAL segment's writer
 * each take the buffers of one that finished before them, rather than grow
 * fresh ones. The kept buffers are shared by the stores of the process, and
 * {@linkcode dropAllSpares} (a store closing) lets go of all of them.
 */

/** Every pool made, for dropAllSpares. */
const pools: Array<Spares<unknown>> = [];

/** A pool of at most `max` kept buffers (or sets of them). */
export class Spares<T> {
  #items: T[] = [];

  constructor(readonly max: number) {
    pools.push(this);
  }

  /** A kept item, or undefined when there is none. */
  take(): T | undefined {
    return this.#items.pop();
  }

  /** Keeps `item` for a later take(), unless `max` are kept already. */
  give(item: T): void {
    if (this.#items.length < this.max) this.#items.push(item);
  }

  /** Items kept now. */
  get size(): number {
    return this.#items.length;
  }

  /** Lets go of every kept item. */
  clear(): void {
    this.#items.length = 0;
  }
}

/** Lets go of the items of every pool (a store closing). */
export function dropAllSpares(): void {
  for (const pool of pools) pool.clear();
}
