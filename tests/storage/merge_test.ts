/**
 * MergeCursor against a model: random sources of overlapping keys, merged
 * forward and in reverse, must give each key once, from its newest source.
 */
import assert from "node:assert/strict";
import { type EntryCursor, MergeCursor } from "../../storage/merge.ts";
import { ByteEntry } from "../../storage/sstable/block.ts";
import { Prng } from "../../util/mod.ts";
import { testSeed } from "../helpers.ts";

/** A source over sorted keys; each entry's value is its source's number. */
class ArrayCursor extends ByteEntry implements EntryCursor {
  #i = -1;
  closed = false;

  constructor(
    private readonly keys: readonly Uint8Array[],
    private readonly source: number,
  ) {
    super();
    this.block = new Uint8Array([source]);
  }

  next(): boolean {
    const k = this.keys[++this.#i];
    if (k === undefined) return false;
    if (k.length > this.key.length) this.key = new Uint8Array(2 * k.length);
    this.key.set(k);
    this.keyLength = k.length;
    // Every third source's entries are tombstones, which merge like values.
    this.valueAt = 0;
    this.valueLength = this.source % 3 === 2 ? -1 : 1;
    return true;
  }

  override close(): void {
    this.closed = true;
  }
}

const hex = (k: Uint8Array) =>
  Array.from(k, (b) => b.toString(16).padStart(2, "0")).join("");

/** Bytewise order, as the merge compares. */
function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

Deno.test("a merge gives each key once, from its newest source, forward and in reverse, over random overlapping sources", () => {
  const rng = new Prng(testSeed("merge_test"));
  for (let round = 0; round < 300; round++) {
    const sources = 1 + rng.int(round % 10 === 0 ? 12 : 5);
    // Keys from a small alphabet, so that sources share many of them (and
    // some are prefixes of others); one source may hold most of the range.
    const universe = 5 + rng.int(60);
    const pick = () => {
      const k = new Uint8Array(1 + rng.int(3));
      for (let i = 0; i < k.length; i++) k[i] = rng.int(4);
      return k;
    };
    const all = Array.from({ length: universe }, pick);
    const lists: Uint8Array[][] = [];
    for (let s = 0; s < sources; s++) {
      const share = s === 0 && rng.chance(0.5) ? 0.9 : rng.next() * 0.6;
      const set = new Map<string, Uint8Array>();
      for (const k of all) if (rng.chance(share)) set.set(hex(k), k);
      lists.push([...set.values()].sort(compareBytes));
    }
    const model = new Map<string, { key: Uint8Array; source: number }>();
    for (let s = sources - 1; s >= 0; s--) {
      for (const key of lists[s]!) model.set(hex(key), { key, source: s });
    }
    const expected = [...model.values()].sort((a, b) =>
      compareBytes(a.key, b.key)
    ).map((e) => `${hex(e.key)}@${e.source}`);
    for (const reverse of [false, true]) {
      const cursors = lists.map((l, s) =>
        new ArrayCursor(reverse ? [...l].reverse() : l, s)
      );
      const merge = new MergeCursor(cursors, reverse);
      const got: string[] = [];
      // Sometimes stop early: close() must close every source.
      const stopAt = rng.chance(0.2) ? rng.int(expected.length + 1) : -1;
      while (got.length !== stopAt && merge.next()) {
        const top = merge.top;
        const source = top.block[0]!;
        assert.equal(top.valueLength, source % 3 === 2 ? -1 : 1);
        got.push(`${hex(top.key.subarray(0, top.keyLength))}@${source}`);
      }
      const want = reverse ? [...expected].reverse() : expected;
      if (stopAt >= 0) {
        merge.close();
        assert.ok(cursors.every((c) => c.closed));
        assert.deepEqual(got, want.slice(0, stopAt), `round ${round}`);
        assert.equal(merge.next(), false);
      } else {
        assert.deepEqual(got, want, `round ${round}, reverse ${reverse}`);
        assert.equal(merge.next(), false);
      }
    }
  }
});
