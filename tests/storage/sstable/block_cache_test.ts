/**
 * The block cache: CLOCK eviction within capacity, and buffer recycling
 * that never hands out memory something can still see — a decoded block's
 * (iterators hold views into it) or the block being inserted.
 */
import assert from "node:assert/strict";
import {
  BlockCache,
  type CachedBlock,
  type DataBlock,
  FREE_BUFFER_BYTES_MAX,
} from "../../../storage/sstable/mod.ts";

function block(cache: BlockCache, n: number, fill: number): CachedBlock {
  const frame = cache.frame(n);
  const raw = frame.subarray(0, n);
  raw.fill(fill);
  return {
    raw,
    decoded: undefined,
    bytes: n,
    at: -1,
    pins: 0,
    evicted: false,
    frame,
    slots: [],
    index: 0,
  };
}

/** Whether two buffers start at the same memory. */
function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.buffer === b.buffer && a.byteOffset === b.byteOffset;
}

const DECODED: DataBlock = {
  keys: [],
  seqs: [],
  values: [],
  expiries: [],
  bytes: 0,
};

Deno.test("evicted blocks that were never decoded lend their buffers to new ones", () => {
  const cache = new BlockCache(3000);
  const slots: Array<CachedBlock | undefined> = [];
  const a = block(cache, 1000, 1);
  a.decoded = DECODED;
  cache.set(slots, 0, a);
  const b = block(cache, 1000, 2);
  cache.set(slots, 1, b);
  const c = block(cache, 1000, 3);
  cache.set(slots, 2, c);
  // A fourth block evicts (references cleared, then the first candidates).
  const d = block(cache, 1000, 4);
  cache.set(slots, 3, d);
  assert.ok(cache.stats().bytes <= 3000, `bytes ${cache.stats().bytes}`);
  assert.equal(slots[3], d, "the block just inserted stays cached");
  assert.ok(d.raw.every((x) => x === 4), "and its bytes stay its own");
  const evicted = [a, b, c].filter((x) => !slots.includes(x));
  assert.equal(evicted.length, 1);
  const next = cache.buffer(1000);
  if (evicted[0] === a) {
    assert.ok(!same(next, a.raw), "a decoded block's buffer");
    assert.ok(a.raw.every((x) => x === 1));
  } else {
    assert.ok(same(next, evicted[0]!.raw), "recycled");
  }
  // Every live block keeps its own bytes.
  for (const [i, x] of slots.entries()) {
    if (x) assert.ok(x.raw.every((v) => v === i + 1), `block ${i}`);
  }
});

Deno.test("a block being inserted is never evicted or recycled by its own insert", () => {
  for (const capacity of [1000, 1500, 2600]) {
    const cache = new BlockCache(capacity);
    const slots: Array<CachedBlock | undefined> = [];
    for (let i = 0; i < 200; i++) {
      const x = block(cache, 500 + ((i * 37) % 500), i & 0xff);
      // Some older blocks were hit since the hand passed.
      if (i % 3 === 0 && slots[i - 1]) cache.get(slots, i - 1);
      cache.set(slots, i, x);
      assert.equal(slots[i], x, `capacity ${capacity}, block ${i} evicted`);
      const other = cache.buffer(x.raw.length);
      assert.ok(!same(other, x.raw), `block ${i} recycled`);
      assert.ok(x.raw.every((v) => v === (i & 0xff)));
      assert.ok(cache.stats().bytes <= capacity);
    }
  }
});

Deno.test("an evicted block a cursor is in is recycled only once the cursor leaves it", () => {
  const cache = new BlockCache(2000);
  const slots: Array<CachedBlock | undefined> = [];
  const a = block(cache, 1000, 1);
  cache.set(slots, 0, a);
  cache.pin(a);
  for (let i = 1; i < 4; i++) cache.set(slots, i, block(cache, 1000, i + 1));
  assert.equal(a.evicted, true, "evicted while pinned");
  assert.ok(!same(cache.buffer(1000), a.raw), "not recycled");
  assert.ok(a.raw.every((x) => x === 1), "its bytes stay its own");
  cache.unpin(a);
  assert.ok(same(cache.buffer(1000), a.raw), "recycled at unpin");
  // A block unpinned while still cached is recycled when evicted.
  const b = slots.find((x) => x !== undefined)!;
  cache.pin(b);
  cache.unpin(b);
  assert.equal(b.evicted, false);
});

Deno.test("a block that needs several evictions to fit is never one of them, whatever the ring's order", () => {
  // Blocks of mixed sizes, all referenced, then bigger ones: each set
  // evicts several blocks (the hand going round more than once), and the
  // block being inserted must stay cached with its buffer its own.
  for (const big of [2048, 2560, 3072]) {
    for (const smallBytes of [512, 768, 1024]) {
      for (let small = 1; small <= 6; small++) {
        const cache = new BlockCache(3072);
        const slots: Array<CachedBlock | undefined> = [];
        let index = 0;
        for (let i = 0; i < small; i++) {
          cache.set(slots, index, block(cache, smallBytes, i));
          index++;
        }
        for (let round = 0; round < 4; round++) {
          const b = block(cache, big - 256 * round, 100 + round);
          cache.set(slots, index, b);
          const what = `big ${big}, ${small} x ${smallBytes}, round ${round}`;
          assert.equal(slots[index], b, `${what}: cached`);
          assert.ok(!b.evicted, `${what}: not evicted`);
          assert.ok(cache.stats().bytes <= 3072, `${what}: within capacity`);
          const next = cache.buffer(b.raw.length);
          assert.ok(!same(next, b.raw), `${what}: buffer lent out`);
          next.fill(7);
          assert.ok(
            b.raw.every((x) => x === 100 + round),
            `${what}: bytes kept`,
          );
          index++;
        }
      }
    }
  }
});

Deno.test("recycled buffers kept for reuse are bounded in bytes, whatever their sizes", () => {
  // 480 blocks of 16 sizes (256-byte steps from 4 KiB), then one block as
  // big as the cache, which evicts them all: without a bound in bytes the
  // free lists would keep every one (up to 64 of each size), 2.3 MB. (No
  // arena: its frames are bounded by the arena; see the next test.)
  const capacity = 4 * 1024 * 1024;
  const cache = new BlockCache(capacity, 0);
  const slots: Array<CachedBlock | undefined> = [];
  const sizes = Array.from({ length: 16 }, (_, i) => 4096 + 256 * i);
  const lent = new Set<ArrayBufferLike>();
  let index = 0;
  for (let round = 0; round < 30; round++) {
    for (const n of sizes) {
      const b = block(cache, n, round);
      lent.add(b.raw.buffer);
      cache.set(slots, index++, b);
    }
  }
  cache.set(slots, index++, block(cache, capacity, 0));
  assert.equal(cache.stats().blocks, 1, "the big block evicted the others");
  // Every buffer taken back out of the free lists is one they kept.
  let kept = 0;
  for (const n of sizes) {
    for (;;) {
      const buf = cache.buffer(n).buffer;
      if (!lent.has(buf)) break;
      lent.delete(buf);
      kept += buf.byteLength;
    }
  }
  assert.ok(
    kept <= FREE_BUFFER_BYTES_MAX,
    `${kept} bytes kept, more than ${FREE_BUFFER_BYTES_MAX}`,
  );
  // The bound is filled, not refused outright.
  assert.ok(kept > FREE_BUFFER_BYTES_MAX - 8192, `${kept} bytes kept`);
});

Deno.test("new frames come from the arena until it is used up, and its frames are all kept for reuse", () => {
  const capacity = 64 * 1024;
  const arena = 16 * 1024;
  const cache = new BlockCache(capacity, arena);
  const slots: Array<CachedBlock | undefined> = [];
  // 1000-byte blocks take 1024-byte frames: 16 fit the arena.
  const blocks = Array.from({ length: 24 }, (_, i) => block(cache, 1000, i));
  const inArena = blocks.filter((b) => b.raw.buffer === blocks[0]!.raw.buffer);
  assert.equal(inArena.length, 16, "frames carved from the arena");
  assert.equal(inArena[0]!.raw.buffer.byteLength, arena);
  for (const [i, b] of inArena.entries()) {
    assert.equal(b.raw.byteOffset, i * 1024, `frame ${i} in order`);
  }
  for (const b of blocks.slice(16)) {
    assert.equal(b.raw.buffer.byteLength, 1024, "then single allocations");
  }
  for (const [i, b] of blocks.entries()) cache.set(slots, i, b);
  // One block as big as the cache evicts all 24: every arena frame is
  // kept, whatever FREE_BUFFER_BYTES_MAX would allow, and handed out again
  // before anything new is allocated.
  cache.set(slots, 24, block(cache, capacity, 99));
  assert.equal(cache.stats().blocks, 1);
  const again = new Set<number>();
  for (let i = 0; i < 24; i++) {
    const f = cache.buffer(1000);
    assert.ok(blocks.some((b) => same(b.raw, f)), `frame ${i} is reused`);
    if (f.buffer === inArena[0]!.raw.buffer) again.add(f.byteOffset);
  }
  assert.equal(again.size, 16, "every arena frame reused");
});

Deno.test("a block hit since the hand last passed outlives one that was not", () => {
  const cache = new BlockCache(4000, 0);
  const slots: Array<CachedBlock | undefined> = [];
  for (let i = 0; i < 4; i++) cache.set(slots, i, block(cache, 1000, i));
  // The fifth block clears every bit on the hand's first pass and evicts
  // block 0; the sixth finds block 1 unreferenced, unless it was hit.
  cache.set(slots, 4, block(cache, 1000, 4));
  assert.equal(slots[0], undefined, "block 0 evicted first");
  assert.ok(cache.get(slots, 1), "block 1 hit");
  cache.set(slots, 5, block(cache, 1000, 5));
  assert.ok(slots[1] !== undefined, "block 1 kept: it was hit");
  assert.equal(slots[2], undefined, "block 2 evicted in its place");
  // A table's dropped blocks go before any referenced block.
  const other: Array<CachedBlock | undefined> = [];
  cache.set(other, 0, block(cache, 1000, 6));
  for (let i = 0; i < 6; i++) if (slots[i]) cache.get(slots, i);
  cache.dropAll(other);
  cache.set(slots, 6, block(cache, 1000, 7));
  const kept = slots.filter((b) => b !== undefined).length;
  assert.equal(kept, 4, "the dropped block made the room");
});

Deno.test("an arena frame of whole pages starts on a page, whatever came before it", () => {
  const cache = new BlockCache(1 << 20, 1 << 20);
  const sizes = [4000, 500, 4096, 100, 3900, 8000, 4096];
  const frames = sizes.map((n) => cache.frame(n));
  for (const [i, f] of frames.entries()) {
    assert.equal(f.buffer, frames[0]!.buffer, `frame ${i} in the arena`);
    if (f.byteLength % 4096 === 0) {
      assert.equal(f.byteOffset % 4096, 0, `frame ${i} (${sizes[i]} bytes)`);
    }
  }
  // Frames never overlap.
  const spans = frames.map((f) => [f.byteOffset, f.byteOffset + f.byteLength])
    .sort((a, b) => a[0]! - b[0]!);
  for (let i = 1; i < spans.length; i++) {
    assert.ok(spans[i]![0]! >= spans[i - 1]![1]!, `frames ${i - 1} and ${i}`);
  }
});
