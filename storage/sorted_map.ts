/**
 * An ordered map from binary-string keys to values: a B+tree with sorted
 * leaf arrays linked in both directions. No removal (the memtable keeps
 * tombstones instead), which keeps nodes simple: they only ever split.
 *
 * Invariants:
 * - Keys in a leaf are strictly increasing; leaves are linked in key order.
 * - In an inner node, `keys[i]` is the smallest key under `children[i + 1]`.
 * - `mutations` grows whenever a key is inserted, so a cursor knows when
 *   its leaf position may have shifted and must seek again.
 */

import { lowerBound, upperBound } from "../util/mod.ts";

/** Most keys in a node before it splits. */
const NODE_KEYS_MAX = 64;

class Leaf<V> {
  keys: string[] = [];
  values: V[] = [];
  next: Leaf<V> | undefined = undefined;
  prev: Leaf<V> | undefined = undefined;
}

class Inner<V> {
  keys: string[] = [];
  children: Array<Node<V>> = [];
}

type Node<V> = Leaf<V> | Inner<V>;

/** A position in a {@linkcode SortedMap}: a leaf and an index in it. */
export interface MapPosition<V> {
  leaf: Leaf<V>;
  index: number;
}

/** Ordered map over binary-string keys. */
export class SortedMap<V> {
  #root: Node<V> = new Leaf<V>();
  #size = 0;
  #path: Array<Inner<V>> = [];
  #slots: number[] = [];
  /** Count of inserted keys; see the module invariants. */
  mutations = 0;

  /** Number of keys. */
  get size(): number {
    return this.#size;
  }

  #leafFor(key: string): Leaf<V> {
    let node = this.#root;
    while (node instanceof Inner) {
      node = node.children[upperBound(node.keys, key)]!;
    }
    return node;
  }

  /** The value of `key`, or undefined. */
  get(key: string): V | undefined {
    const leaf = this.#leafFor(key);
    const i = lowerBound(leaf.keys, key);
    return leaf.keys[i] === key ? leaf.values[i] : undefined;
  }

  /** Sets `key` to `value`; returns the value it replaced, if any. */
  set(key: string, value: V): V | undefined {
    // The descent path is kept in reused arrays: set() is on the put path.
    const path = this.#path;
    const slots = this.#slots;
    let depth = 0;
    let node = this.#root;
    while (node instanceof Inner) {
      const slot = upperBound(node.keys, key);
      path[depth] = node;
      slots[depth++] = slot;
      node = node.children[slot]!;
    }
    const leaf = node;
    const i = lowerBound(leaf.keys, key);
    if (leaf.keys[i] === key) {
      const old = leaf.values[i];
      leaf.values[i] = value;
      return old;
    }
    leaf.keys.splice(i, 0, key);
    leaf.values.splice(i, 0, value);
    this.#size++;
    this.mutations++;
    if (leaf.keys.length > NODE_KEYS_MAX) this.#split(leaf, depth);
    return undefined;
  }

  #split(leaf: Leaf<V>, depth: number): void {
    const path = this.#path;
    const slots = this.#slots;
    const half = leaf.keys.length >>> 1;
    const right = new Leaf<V>();
    right.keys = leaf.keys.splice(half);
    right.values = leaf.values.splice(half);
    right.next = leaf.next;
    right.prev = leaf;
    if (leaf.next) leaf.next.prev = right;
    leaf.next = right;
    let separator = right.keys[0]!;
    let newChild: Node<V> = right;
    for (let level = depth - 1; level >= 0; level--) {
      const parent = path[level]!;
      const slot = slots[level]!;
      parent.keys.splice(slot, 0, separator);
      parent.children.splice(slot + 1, 0, newChild);
      if (parent.keys.length <= NODE_KEYS_MAX) return;
      const mid = parent.keys.length >>> 1;
      const sibling = new Inner<V>();
      separator = parent.keys[mid]!;
      sibling.keys = parent.keys.splice(mid + 1);
      parent.keys.length = mid;
      sibling.children = parent.children.splice(mid + 1);
      newChild = sibling;
    }
    const root = new Inner<V>();
    root.keys = [separator];
    root.children = [this.#root, newChild];
    this.#root = root;
  }

  /**
   * Position of the first key >= `key` (or of the first key, if `key` is
   * undefined); undefined when there is none.
   */
  seekGE(key: string | undefined): MapPosition<V> | undefined {
    let leaf: Leaf<V> | undefined;
    let index: number;
    if (key === undefined) {
      leaf = this.#firstLeaf();
      index = 0;
    } else {
      leaf = this.#leafFor(key);
      index = lowerBound(leaf.keys, key);
    }
    while (leaf && index >= leaf.keys.length) {
      leaf = leaf.next;
      index = 0;
    }
    return leaf ? { leaf, index } : undefined;
  }

  /**
   * Position of the last key < `key` (or of the last key, if `key` is
   * undefined); undefined when there is none.
   */
  seekLT(key: string | undefined): MapPosition<V> | undefined {
    let leaf: Leaf<V> | undefined;
    let index: number;
    if (key === undefined) {
      leaf = this.#lastLeaf();
      index = leaf.keys.length - 1;
    } else {
      leaf = this.#leafFor(key);
      index = lowerBound(leaf.keys, key) - 1;
    }
    while (leaf && index < 0) {
      leaf = leaf.prev;
      index = leaf ? leaf.keys.length - 1 : -1;
    }
    return leaf ? { leaf, index } : undefined;
  }

  /** Replaces every value `v` with `update(v)`, in key order. */
  updateValues(update: (value: V) => V): void {
    for (
      let leaf: Leaf<V> | undefined = this.#firstLeaf();
      leaf !== undefined;
      leaf = leaf.next
    ) {
      const values = leaf.values;
      for (let i = 0; i < values.length; i++) values[i] = update(values[i]!);
    }
  }

  /** Key at a position. */
  keyAt(pos: MapPosition<V>): string {
    return pos.leaf.keys[pos.index]!;
  }

  /** Value at a position. */
  valueAt(pos: MapPosition<V>): V {
    return pos.leaf.values[pos.index]!;
  }

  /** Moves `pos` to the next key; false (and pos unusable) at the end. */
  step(pos: MapPosition<V>, reverse: boolean): boolean {
    if (!reverse) {
      pos.index++;
      while (pos.index >= pos.leaf.keys.length) {
        const next = pos.leaf.next;
        if (!next) return false;
        pos.leaf = next;
        pos.index = 0;
      }
      return true;
    }
    pos.index--;
    while (pos.index < 0) {
      const prev = pos.leaf.prev;
      if (!prev) return false;
      pos.leaf = prev;
      pos.index = prev.keys.length - 1;
    }
    return true;
  }

  #firstLeaf(): Leaf<V> {
    let node = this.#root;
    while (node instanceof Inner) node = node.children[0]!;
    return node;
  }

  #lastLeaf(): Leaf<V> {
    let node = this.#root;
    while (node instanceof Inner) {
      node = node.children[node.children.length - 1]!;
    }
    return node;
  }
}
