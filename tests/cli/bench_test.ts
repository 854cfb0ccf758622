/** The db_bench runner's pieces: percentiles and the values puts write. */
import assert from "node:assert/strict";
import { percentile, ValueSource } from "../../cli/bench.ts";
import { Prng } from "../../util/mod.ts";

Deno.test("bench percentiles are nearest-rank", () => {
  const hundred = Float64Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(percentile(hundred, 0.5), 50);
  assert.equal(percentile(hundred, 0.99), 99);
  assert.equal(percentile(hundred, 1), 100);
  assert.equal(percentile(Float64Array.of(7), 0.5), 7);
  assert.equal(percentile(Float64Array.of(1, 2, 3), 0.5), 2);
  assert.equal(percentile(new Float64Array(0), 0.5), 0);
});

Deno.test("bench values differ put to put and repeat for a seed", () => {
  const a = new ValueSource(new Prng(5), 100);
  const b = new ValueSource(new Prng(5), 100);
  const seen = new Set<string>();
  for (let i = 0; i < 20_000; i++) {
    const v = a.next();
    assert.equal(v.length, 100);
    assert.deepEqual(v, b.next());
    seen.add(v.join(","));
  }
  assert.equal(seen.size, 20_000);
  assert.notDeepEqual(
    new ValueSource(new Prng(6), 100).next(),
    new ValueSource(new Prng(5), 100).next(),
  );
});
