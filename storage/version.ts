/**
 * Versions: immutable sets of open tables per level, reference counted so
 * that a table file is closed and deleted only when no live version (the
 * current one, or one pinned by a scan or snapshot) names it.
 *
 * Invariants:
 * - A table's reference count is the number of live versions holding it.
 * - A table is deleted only after the manifest edit that dropped it is
 *   durable (callers install a version only after its edit is durable).
 */
import { assert } from "../util/mod.ts";
import type { TableReader } from "./sstable/mod.ts";

/** One live table and how many versions hold it. */
interface Held {
  reader: TableReader;
  refs: number;
}

/** An immutable set of tables per level. */
export class Version {
  #refs = 1;
  /**
   * Per level, its tables' smallest and largest keys, in the level's order:
   * a get's search for the table of a level reads these arrays, not each
   * table's properties object (two loads fewer per step).
   */
  readonly smallest: ReadonlyArray<readonly string[]>;
  readonly largest: ReadonlyArray<readonly string[]>;

  constructor(
    readonly levels: ReadonlyArray<readonly TableReader[]>,
    private readonly owner: TableSet,
  ) {
    for (const level of levels) for (const t of level) owner.hold(t);
    this.smallest = levels.map((l) => l.map((t) => t.props.smallest));
    this.largest = levels.map((l) => l.map((t) => t.props.largest));
  }

  /** Pins the version (a scan or snapshot starting). */
  ref(): void {
    assert(this.#refs > 0, "ref of a released version");
    this.#refs++;
  }

  /** Unpins; the last unref releases the version's tables. */
  unref(): void {
    assert(this.#refs > 0, "unref of a released version");
    if (--this.#refs === 0) {
      for (const level of this.levels) {
        for (const t of level) this.owner.release(t);
      }
    }
  }

  /** Number of tables in all levels. */
  get tableCount(): number {
    return this.levels.reduce((n, l) => n + l.length, 0);
  }
}

/** The open tables of a store and their reference counts. */
export class TableSet {
  #held = new Map<number, Held>();
  #closed = false;

  constructor(
    /** Called when a table is no longer held: close and delete it. */
    private readonly onObsolete: (reader: TableReader) => void,
  ) {}

  /** Counts one more version holding `reader`. */
  hold(reader: TableReader): void {
    const h = this.#held.get(reader.fileNumber);
    if (h) h.refs++;
    else this.#held.set(reader.fileNumber, { reader, refs: 1 });
  }

  /** Counts one version fewer; at zero the table is obsolete. */
  release(reader: TableReader): void {
    // A scan or snapshot released after the store closed: nothing to do.
    if (this.#closed) return;
    const h = this.#held.get(reader.fileNumber);
    assert(h !== undefined, "release of a table not held");
    if (--h.refs === 0) {
      this.#held.delete(reader.fileNumber);
      this.onObsolete(h.reader);
    }
  }

  /**
   * Closes every table without deleting any (the store is closing; the
   * manifest still names them). The set is unusable afterwards.
   */
  closeAll(): void {
    this.#closed = true;
    for (const h of this.#held.values()) h.reader.close();
    this.#held.clear();
  }

  /** Number of tables held by some live version. */
  get size(): number {
    return this.#held.size;
  }
}
