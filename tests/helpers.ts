/**
 * Shared test helpers: temporary directories, seeds, small assertions.
 */
import type { Env, WritableFile } from "../storage/env.ts";
import { randomSeed } from "../util/mod.ts";

/**
 * `env` with the methods in `overrides` replaced (to slow down or fail
 * some operations); its other methods are its own, bound to it.
 */
export function overriding(env: Env, overrides: Partial<Env>): Env {
  return new Proxy(env, {
    get(target, prop) {
      if (Object.hasOwn(overrides, prop)) {
        return overrides[prop as keyof Env];
      }
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/**
 * `file` with the methods in `overrides` replaced (to fail or slow some
 * calls); the others forward to it. (The real Env's files are class
 * instances, whose methods a spread does not copy.)
 */
export function wrapWritable(
  file: WritableFile,
  overrides: Partial<Omit<WritableFile, "path">>,
): WritableFile {
  return {
    path: file.path,
    append: (bytes) => file.append(bytes),
    preallocate: (length) => file.preallocate(length),
    trim: () => file.trim(),
    syncData: () => file.syncData(),
    close: () => file.close(),
    ...overrides,
  };
}

/** A fresh temporary directory, removed by the returned disposer. */
export async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "kv_test_" });
  return {
    path,
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true }).catch(() => {});
    },
  };
}

/**
 * The seed for a random test: KV_SEED from the environment if set, else a
 * fresh one. Printed so that a failing run can be replayed.
 */
export function testSeed(name: string): number {
  const fixed = Deno.env.get("KV_SEED");
  const seed = fixed !== undefined ? Number(fixed) >>> 0 : randomSeed();
  console.log(`${name}: seed ${seed} (replay with KV_SEED=${seed})`);
  return seed;
}

const decoder = new TextDecoder();

/** UTF-8 decoding of an optional value. */
export function text(bytes: Uint8Array | undefined): string | undefined {
  return bytes === undefined ? undefined : decoder.decode(bytes);
}

/** Lists a directory's entry names, sorted. */
export async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}
