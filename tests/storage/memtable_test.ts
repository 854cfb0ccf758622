/**
 * The memtable's hash index: keys whose hashes collide share a slot and
 * still keep their own versions, readers, order and flush entries.
 */
import assert from "node:assert/strict";
import { hashSlot, Memtable, ReaderRegistry } from "../../storage/memtable.ts";
import { bloomHash1 } from "../../storage/sstable/mod.ts";
import { text } from "../helpers.ts";

const encoder = new TextEncoder();
const bytes = (s: string) => encoder.encode(s);

/** `pairs` pairs of distinct keys with the same index slot (a birthday search). */
function collidingPairs(pairs: number): Array<[string, string]> {
  const seen = new Map<number, string>();
  const out: Array<[string, string]> = [];
  for (let i = 0; out.length < pairs; i++) {
    const key = `k${i}`;
    const slot = hashSlot(bloomHash1(key));
    const other = seen.get(slot);
    if (other !== undefined) out.push([other, key]);
    else seen.set(slot, key);
  }
  return out;
}

Deno.test("keys sharing a hash slot keep their own versions", () => {
  const pairs = collidingPairs(3);
  const readers = new ReaderRegistry();
  const mem = new Memtable(readers);
  let seq = 1;
  for (const [a, b] of pairs) {
    assert.equal(hashSlot(bloomHash1(a)), hashSlot(bloomHash1(b)));
    mem.apply(seq++, a, bytes("a1"), 0);
    mem.apply(seq++, b, bytes("b1"), 0);
  }
  // A reader pinned now keeps the first versions through overwrites.
  const pinned = seq - 1;
  readers.add(pinned);
  for (const [a, b] of pairs) {
    mem.apply(seq++, b, bytes("b2"), 0);
    mem.apply(seq++, a, undefined, 0);
    mem.apply(seq++, b, bytes("b3"), 0);
  }
  for (const [a, b] of pairs) {
    assert.equal(mem.get(a)?.value, undefined);
    assert.ok(mem.get(a), `${a} has a tombstone`);
    assert.equal(text(mem.get(b)?.value), "b3");
    assert.equal(text(mem.get(a, pinned)?.value), "a1");
    assert.equal(text(mem.get(b, pinned)?.value), "b1");
    assert.equal(mem.get(a + "x"), undefined);
  }
  assert.equal(mem.size, 6);
  assert.equal(mem.liveKeys, 3);
  const newest = [...mem.newest()].map((v) => `${v.key}=${text(v.value)}`)
    .sort();
  const expected = pairs.flatMap(([a, b]) => [`${a}=undefined`, `${b}=b3`]);
  assert.deepEqual(newest, expected.sort());
  const ordered = [...mem.entries(Number.POSITIVE_INFINITY, {})].map((
    [k],
  ) => k);
  assert.deepEqual(ordered, pairs.flat().sort());
  const atPin = [...mem.entries(pinned, {})].map(([k, v]) =>
    `${k}=${text(v.value)}`
  );
  assert.deepEqual(
    atPin,
    pairs.flatMap(([a, b]) => [`${a}=a1`, `${b}=b1`]).sort(),
  );
  readers.remove(pinned);
});

Deno.test("a memtable's buffers go to the next one after its last unpin, and not before", () => {
  const first = new Memtable();
  for (let i = 0; i < 3000; i++) first.apply(i + 1, `a${i}`, bytes(`v${i}`), 0);
  first.pin(); // a view
  first.unpin(); // the store, after the flush
  assert.equal(text(first.get("a7")?.value), "v7", "a view still reads it");
  const second = new Memtable();
  second.apply(1, "b", bytes("only"), 0);
  assert.equal(text(first.get("a2999")?.value), "v2999");
  first.unpin(); // the view
  assert.throws(() => first.get("a1"), /recycled/);
  // The next memtable gets the buffers, emptied: none of the old keys.
  const third = new Memtable();
  assert.equal(third.get("a7"), undefined);
  assert.equal(third.size, 0);
  for (let i = 0; i < 100; i++) third.apply(i + 1, `c${i}`, bytes(`w${i}`), 0);
  for (let i = 0; i < 100; i++) {
    assert.equal(text(third.get(`c${i}`)?.value), `w${i}`);
    assert.equal(third.get(`a${i}`), undefined);
  }
  assert.deepEqual(
    [...third.entries(Number.POSITIVE_INFINITY, {})].map(([k]) => k),
    Array.from({ length: 100 }, (_, i) => `c${i}`).sort(),
  );
  assert.equal(text(second.get("b")?.value), "only");
});
