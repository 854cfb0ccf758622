import assert from "node:assert/strict";
import {
  binaryToBytes,
  BytePool,
  bytesToBinary,
  bytesToBinaryFallback,
  copyInto,
  crc32,
  crc32c,
  crc32cExtendZeros,
  crc32cUpdate,
  crc32ExtendZeros,
  crc32Update,
  dropAllSpares,
  getFixed32,
  getFixed64,
  getVarint32,
  keyWord,
  lowerBound,
  maskCrc,
  prefixSuccessor,
  Prng,
  putBinary,
  putFixed32,
  putFixed64,
  putVarint32,
  sharedPrefix,
  sortedOrderOfStrings,
  Spares,
  textToBinary,
  unmaskCrc,
  varint32Length,
  wordLowerBound,
} from "../../util/mod.ts";
import { testSeed } from "../helpers.ts";

Deno.test("crc32c matches the standard check values", () => {
  // RFC 3720 / iSCSI test vectors.
  assert.equal(crc32c(new TextEncoder().encode("123456789")), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  const ascending = Uint8Array.from({ length: 32 }, (_, i) => i);
  assert.equal(crc32c(ascending), 0x46dd794e);
});

Deno.test("crc32c over a range equals crc32c of the slice", () => {
  const rng = new Prng(7);
  const data = rng.bytes(1000);
  for (const [s, e] of [[0, 0], [3, 17], [1, 999], [500, 1000]] as const) {
    assert.equal(crc32c(data, s, e), crc32c(data.slice(s, e)));
  }
});

for (
  const [name, whole, update, poly] of [
    ["crc32c", crc32c, crc32cUpdate, 0x82f63b78],
    ["crc32", crc32, crc32Update, 0xedb88320],
  ] as const
) {
  Deno.test(`${name} matches a bitwise reference at every alignment and length`, () => {
    const reference = (data: Uint8Array): number => {
      let c = 0xffffffff;
      for (const byte of data) {
        c ^= byte;
        for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ poly : c >>> 1;
      }
      return ~c >>> 0;
    };
    const rng = new Prng(19);
    const backing = rng.bytes(5000);
    for (let i = 0; i < 400; i++) {
      // Views at every byte offset of their buffer, short and long (the bulk
      // of a long input is read as 32-bit words).
      const offset = rng.int(8);
      const n = i < 40 ? i : rng.int(4000);
      const view = backing.subarray(offset, offset + n);
      const want = reference(view);
      assert.equal(whole(view), want, `offset ${offset}, ${n} bytes`);
      assert.equal(
        whole(backing, offset, offset + n),
        want,
        `range at ${offset}, ${n} bytes`,
      );
      const cut = rng.int(n + 1);
      assert.equal(
        update(whole(view, 0, cut), view, cut, n),
        want,
        `offset ${offset}, ${n} bytes split at ${cut}`,
      );
    }
  });
}

Deno.test("a crc extended over n zero bytes equals the crc of the data followed by n zeros", () => {
  const rng = new Prng(23);
  for (
    const [whole, extend] of [[crc32, crc32ExtendZeros], [
      crc32c,
      crc32cExtendZeros,
    ]] as const
  ) {
    for (const n of [0, 1, 2, 3, 7, 8, 9, 255, 4096, (1 << 20) + 5]) {
      const data = new Uint8Array(41 + n);
      data.set(rng.bytes(41));
      const cut = rng.int(42);
      assert.equal(extend(whole(data, 0, 41), n), whole(data), `${n} zeros`);
      // Zeros already in the data, then more.
      assert.equal(
        extend(whole(data, 0, 41 + (n >> 1)), n - (n >> 1)),
        whole(data),
        `${n} zeros in two parts`,
      );
      assert.equal(extend(whole(data, 0, cut), 0), whole(data, 0, cut));
    }
    assert.equal(extend(0, 3), whole(new Uint8Array(3)), "from nothing");
    assert.throws(() => extend(0, -1), RangeError);
  }
});

Deno.test("crc32 matches the standard check value", () => {
  assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
  assert.equal(crc32(new Uint8Array(0)), 0);
});

Deno.test("masked crcs round trip and differ from the raw crc", () => {
  for (const c of [0, 1, 0xffffffff, 0xe3069283, 0x12345678]) {
    assert.equal(unmaskCrc(maskCrc(c)), c);
    assert.notEqual(maskCrc(c), c);
  }
});

Deno.test("varint32 round trips at every length boundary", () => {
  const buf = new Uint8Array(8);
  const out = { value: 0, offset: 0 };
  const cases = [
    0,
    1,
    127,
    128,
    16383,
    16384,
    2097151,
    2097152,
    268435455,
    268435456,
    0xffffffff,
  ];
  for (const v of cases) {
    const end = putVarint32(buf, 0, v);
    assert.equal(end, varint32Length(v), `length of ${v}`);
    assert.ok(getVarint32(buf, 0, end, out));
    assert.equal(out.value, v);
    assert.equal(out.offset, end);
    assert.equal(getVarint32(buf, 0, end - 1, out), false, `truncated ${v}`);
  }
  // Six continuation bytes or a fifth byte over 4 bits is not a varint32.
  assert.equal(
    getVarint32(Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x80, 0x01), 0, 6, out),
    false,
  );
  assert.equal(
    getVarint32(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x1f), 0, 5, out),
    false,
  );
});

Deno.test("fixed32 and fixed64 round trip, and fixed64 rejects unsafe values", () => {
  const buf = new Uint8Array(8);
  for (const v of [0, 1, 0xffffffff]) {
    putFixed32(buf, 0, v);
    assert.equal(getFixed32(buf, 0), v);
  }
  for (const v of [0, 1, 2 ** 32, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER]) {
    putFixed64(buf, 0, v);
    assert.equal(getFixed64(buf, 0), v);
  }
  buf.fill(0xff);
  assert.equal(getFixed64(buf, 0), -1);
});

Deno.test("binary strings keep bytes and bytewise order", () => {
  const rng = new Prng(11);
  const keys: Uint8Array[] = [];
  for (let i = 0; i < 300; i++) keys.push(rng.bytes(rng.int(6)));
  keys.push(rng.bytes(5000));
  for (const k of keys) assert.deepEqual(binaryToBytes(bytesToBinary(k)), k);
  const cmp = (a: Uint8Array, b: Uint8Array) => {
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      if (a[i] !== b[i]) return a[i]! - b[i]!;
    }
    return a.length - b.length;
  };
  const byBytes = [...keys].sort(cmp).map((k) => bytesToBinary(k));
  const byString = keys.map((k) => bytesToBinary(k)).sort();
  assert.deepEqual(byString, byBytes);
  assert.equal(textToBinary("abc"), "abc");
  assert.deepEqual(
    binaryToBytes(textToBinary("é€")),
    new TextEncoder().encode("é€"),
  );
  // The last ASCII char stays; the first past it is encoded, wherever it is
  // in a key made by concatenation.
  assert.equal(textToBinary("a\x7f"), "a\x7f");
  assert.equal(textToBinary("\x80"), "\xc2\x80");
  const rope = "key-" + "x".repeat(20);
  assert.equal(textToBinary(rope + "é"), rope + "\xc3\xa9");
  assert.equal(textToBinary("😀"), "\xf0\x9f\x98\x80");
});

Deno.test("bytesToBinary and putBinary convert exactly, ASCII or not", () => {
  const rng = new Prng(23);
  const buf = new Uint8Array(4096).fill(0xee);
  for (let i = 0; i < 2000; i++) {
    const n = rng.int(300);
    // ASCII only, or with one high byte somewhere, or random bytes.
    const bytes = rng.bytes(n).map((b) => b & 0x7f);
    const kind = i % 3;
    if (kind === 1 && n > 0) bytes[rng.int(n)] = 0x80 | rng.int(128);
    if (kind === 2) bytes.set(rng.bytes(n));
    const from = rng.int(n + 1);
    const to = from + rng.int(n - from + 1);
    let expected = "";
    for (let j = from; j < to; j++) expected += String.fromCharCode(bytes[j]!);
    assert.equal(bytesToBinary(bytes, from, to), expected, `case ${i}`);
    assert.equal(bytesToBinaryFallback(bytes, from, to), expected);
    assert.deepEqual(binaryToBytes(expected), bytes.subarray(from, to));
    const at = rng.int(100);
    buf.fill(0xee);
    assert.equal(putBinary(buf, at, bytesToBinary(bytes)), at + n);
    assert.deepEqual(buf.subarray(at, at + n), bytes, `case ${i}, ${n} bytes`);
    assert.equal(buf[at + n], 0xee, `case ${i}: wrote past the end`);
  }
});

Deno.test("bytesToBinary converts large arrays, past the fallback's chunk size", () => {
  const bytes = new Prng(29).bytes(20_000);
  let expected = "";
  for (const b of bytes) expected += String.fromCharCode(b);
  assert.equal(bytesToBinary(bytes), expected);
  assert.equal(bytesToBinaryFallback(bytes, 0, bytes.length), expected);
  assert.equal(bytesToBinary(bytes, 7, 19_993), expected.slice(7, 19_993));
});

Deno.test("copyInto copies any range, short or long, whole or part, to any offset", () => {
  const src = Uint8Array.from({ length: 300 }, (_, i) => (i * 7 + 3) & 0xff);
  for (const [start, end] of [[0, 300], [0, 10], [5, 30], [1, 300], [0, 25]]) {
    for (const at of [0, 3]) {
      const dst = new Uint8Array(310).fill(0xee);
      assert.equal(copyInto(dst, at, src, start!, end!), at + end! - start!);
      assert.deepEqual(
        dst.subarray(at, at + end! - start!),
        src.subarray(start, end),
      );
      assert.ok(dst.subarray(0, at).every((b) => b === 0xee));
      assert.ok(dst.subarray(at + end! - start!).every((b) => b === 0xee));
    }
  }
  // A pool's copy is its own: the source changing later leaves it alone.
  const pool = new BytePool();
  const copy = pool.copy(src);
  src[0] = 0;
  assert.equal(copy[0], 3);
  assert.equal(copy.length, 300);
});

Deno.test("a byte pool replaces a chunk a caller detached, even one it took nothing from", () => {
  for (const first of [0, 10]) {
    const pool = new BytePool();
    const taken = pool.alloc(first);
    structuredClone(taken, { transfer: [taken.buffer as ArrayBuffer] });
    for (const n of [0, 10, 0]) {
      const next = pool.alloc(n);
      assert.equal(next.length, n, `alloc(${n}) after alloc(${first})`);
      next.fill(7);
    }
    assert.equal(pool.copy(Uint8Array.of(1, 2))[1], 2);
  }
});

Deno.test("a byte pool's word copies equal byte copies, whatever the length, past the pooled size and after a detach", () => {
  const src = new Uint8Array(12_000);
  for (let i = 0; i < src.length; i++) src[i] = (i * 131 + 7) & 0xff;
  const words = new Int32Array(src.buffer);
  const pool = new BytePool();
  for (const start of [0, 4, 8, 1000]) {
    for (
      const n of [0, 1, 2, 3, 4, 5, 7, 8, 13, 100, 101, 4095, 4096, 4097, 9000]
    ) {
      const copy = pool.copyWords(src, words, start, n);
      assert.equal(copy.length, n, `copyWords(${start}, ${n})`);
      assert.deepEqual(copy, src.slice(start, start + n), `${start}, ${n}`);
      if (n > 0 && n <= 4096) {
        assert.equal(copy.byteOffset % 8, 0, "pooled copies start aligned");
      }
      // A later copy leaves this one alone.
      pool.copyWords(src, words, 8, 64).fill(0);
      assert.deepEqual(
        copy,
        src.slice(start, start + n),
        `${start}, ${n} kept`,
      );
    }
  }
  const taken = pool.copyWords(src, words, 16, 12);
  structuredClone(taken, { transfer: [taken.buffer as ArrayBuffer] });
  assert.deepEqual(pool.copyWords(src, words, 20, 10), src.slice(20, 30));
});

Deno.test("a search through key words agrees with lowerBound", () => {
  const rng = new Prng(37);
  for (const prefix of ["", "k:0042:"]) {
    const keys = [
      ...new Set(
        Array.from(
          { length: 500 },
          () =>
            prefix + (rng.chance(0.5) ? "ab" : "") +
            String.fromCharCode(...rng.bytes(rng.int(6))),
        ),
      ),
    ].sort();
    const skip = sharedPrefix(keys[0]!, keys.at(-1)!);
    assert.ok(skip >= prefix.length);
    const words = Uint32Array.from(keys, (k) => keyWord(k, skip));
    for (let i = 1; i < words.length; i++) {
      assert.ok(words[i - 1]! <= words[i]!, "words follow key order");
    }
    const inRange = [...keys, ...keys.map((k) => k + "\x00")].filter((k) =>
      k <= keys.at(-1)!
    );
    for (const k of inRange) {
      assert.equal(
        wordLowerBound(keys, words, skip, k),
        lowerBound(keys, k),
        JSON.stringify(k),
      );
    }
  }
});

Deno.test("a radix sort of binary strings agrees with comparing them", () => {
  const seed = testSeed("radix sort");
  const rng = new Prng(seed);
  const random = (n: number) => String.fromCharCode(...rng.bytes(n));
  const families: Record<string, string[]> = {
    // Bytes 0 and 255, keys that are prefixes of others, repeats.
    short: Array.from({ length: 3000 }, () => random(rng.int(5))),
    // A long shared prefix, then keys that differ late or end early.
    prefixed: Array.from(
      { length: 2000 },
      () =>
        "p".repeat(200) + (rng.chance(0.3) ? "\x00" : "") +
        random(rng.int(8)),
    ),
    // Each key one byte longer than the last: a tie peels off one key per
    // pass, past the pass limit.
    chain: Array.from({ length: 300 }, (_, i) => "a".repeat(i) + "b").concat(
      Array.from({ length: 300 }, (_, i) => "a".repeat(i)),
    ),
    // A flush's keys: zero-padded numbers.
    numbers: Array.from(
      { length: 5000 },
      () => String(rng.int(1e9)).padStart(16, "0"),
    ),
  };
  for (const [name, family] of Object.entries(families)) {
    const keys = rng.chance(0.5) ? family : family.slice().reverse();
    const got = Array.from(sortedOrderOfStrings(keys), (i) => keys[i]!);
    assert.deepEqual(got, keys.slice().sort(), `${name}, seed ${seed}`);
    assert.deepEqual(
      Array.from(sortedOrderOfStrings(keys)).sort((a, b) => a - b),
      keys.map((_, i) => i),
      `${name}: every index once`,
    );
  }
  assert.deepEqual(Array.from(sortedOrderOfStrings([])), []);
  assert.deepEqual(Array.from(sortedOrderOfStrings(["b", "a"])), [1, 0]);
});

Deno.test("a pool of spares keeps at most its max, and dropAllSpares empties every pool", () => {
  const a = new Spares<number>(2);
  const b = new Spares<string>(1);
  a.give(1);
  a.give(2);
  a.give(3); // over the max: not kept
  b.give("x");
  b.give("y");
  assert.equal(a.size, 2);
  assert.equal(b.size, 1);
  assert.equal(a.take(), 2);
  dropAllSpares();
  assert.equal(a.size, 0);
  assert.equal(b.size, 0);
  assert.equal(a.take(), undefined);
  assert.equal(b.take(), undefined);
});

Deno.test("prefixSuccessor bounds every string with the prefix", () => {
  assert.equal(prefixSuccessor("ab"), "ac");
  assert.equal(prefixSuccessor("a\xff"), "b");
  assert.equal(prefixSuccessor("\xff\xff"), undefined);
  assert.equal(prefixSuccessor(""), undefined);
});

Deno.test("the PRNG replays from its seed", () => {
  const a = new Prng(42);
  const b = new Prng(42);
  const xs = Array.from({ length: 5 }, () => a.nextU32());
  assert.deepEqual(xs, Array.from({ length: 5 }, () => b.nextU32()));
  assert.notDeepEqual(
    xs,
    Array.from({ length: 5 }, () => new Prng(43).nextU32()),
  );
});
