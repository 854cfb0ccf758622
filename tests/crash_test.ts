/**
 * Real crashes: kv runs as a subprocess and is killed with SIGKILL at random
 * moments while writes stream in; after each kill the store reopens and
 * every acknowledged write must read back exactly, and nothing may read
 * back that was never written. Under `--sync interval` too (acknowledged
 * once the OS has the bytes, which a kill does not lose); under `--sync
 * none` (acknowledged in memory) the state must be a prefix of the writes.
 * Each round checks that the kill happened, after the acknowledgements it
 * waited for: a REPL that dies or exits on its own fails the round.
 *
 * A kill cannot drop the OS page cache, so these tests prove the ack
 * discipline and that recovery replays what a killed process left, not
 * fsync placement (see the power-cut simulation for that), nor torn tails
 * (records reach the OS whole; recovery_test and the power cuts tear them).
 * Seeds: KV_SEED replays one (the moment of a kill is timing, not seed);
 * KV_CRASH_SEEDS sets how many (default 6; `deno task soak` runs more).
 */
import assert from "node:assert/strict";
import { openStore } from "../storage/mod.ts";
import { Prng } from "../util/mod.ts";
import { tempDir, testSeed, text } from "./helpers.ts";
import { kvArgs } from "./kv_process.ts";
import { expectedValue } from "./fixtures/crash_values.ts";

const SEEDS = Number(Deno.env.get("KV_CRASH_SEEDS") ?? 6);
const ROUNDS = 3;

interface Op {
  key: string;
  value: string | undefined;
}

/** Reads lines from a stream, calling onLine for each. */
async function pumpLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of stream) {
    pending += decoder.decode(chunk, { stream: true });
    let nl;
    while ((nl = pending.indexOf("\n")) >= 0) {
      onLine(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
  }
}

/**
 * One round: start the REPL on `dir`, stream `ops` into it without waiting,
 * count the OKs, kill it after `killAfterOks` of them. Returns the number of
 * acknowledged ops (every op before the first unacked one is acked, since
 * responses come in order).
 */
async function crashRound(
  dir: string,
  ops: Op[],
  killAfterOks: number,
  rng: Prng,
  flags: string[],
): Promise<number> {
  const child = new Deno.Command(Deno.execPath(), {
    args: kvArgs(["--data", dir, ...flags]),
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  let acked = 0;
  let killed = false;
  const kill = () => {
    if (killed) return;
    killed = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
  };
  const reading = pumpLines(child.stdout, (line) => {
    if (killed) return;
    assert.equal(line, "OK", `unexpected response ${JSON.stringify(line)}`);
    acked++;
    if (acked >= killAfterOks) {
      // Sometimes kill at once, sometimes a little later.
      if (rng.chance(0.5)) kill();
      else setTimeout(kill, rng.int(5));
    }
  });
  const writer = child.stdin.getWriter();
  const enc = new TextEncoder();
  try {
    for (let i = 0; i < ops.length && !killed; i += 50) {
      let chunk = "";
      for (const op of ops.slice(i, i + 50)) {
        chunk += op.value === undefined
          ? `DELETE ${op.key}\n`
          : `PUT ${op.key} ${op.value}\n`;
      }
      await writer.write(enc.encode(chunk));
    }
    if (!killed) await writer.close();
  } catch {
    // The child died while we were writing.
  }
  await reading;
  const killedHere = killed;
  kill();
  const status = await child.status;
  // Killed by this round once it had its acknowledgements, or done with
  // every op and exited cleanly (an exit of 0 means it read to the end of
  // its input; it may do so just before a kill due a moment later, and
  // then the OKs counted stop at the kill): anything else is a REPL that
  // failed.
  assert.ok(
    (killedHere && status.signal === "SIGKILL" && acked >= killAfterOks) ||
      (status.success && (acked === ops.length || killedHere)),
    `the REPL ended on its own (${JSON.stringify(status)}) after ${acked} OKs`,
  );
  return acked;
}

/**
 * Crash rounds over `seeds` seeds with the REPL started with `flags`;
 * unless `ackedDurable` is false (`--sync none`), every acknowledged write
 * must survive.
 */
async function replCrashes(
  name: string,
  flags: string[],
  { ackedDurable = true, seeds = SEEDS } = {},
): Promise<number> {
  const base = testSeed(name);
  let roundsWithTables = 0;
  for (let s = 0; s < seeds; s++) {
    const seed = (base + s) >>> 0;
    const rng = new Prng(seed);
    await using tmp = await tempDir();
    const model = new Map<string, string>();
    const history: Op[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const ops: Op[] = Array.from({ length: 3000 }, (_, i) => {
        const key = `key${rng.int(500)}`;
        const value = rng.chance(0.1)
          ? undefined
          : `s${seed}r${round}i${i} ${"x".repeat(rng.int(60))}`;
        return { key, value };
      });
      const acked = await crashRound(tmp.path, ops, rng.int(2500), rng, flags);
      // Recovered state must equal the state after some prefix of the ops
      // that contains every acknowledged one. The prefix length is the
      // number of ops recovery replayed beyond earlier rounds.
      const store = await openStore(tmp.path);
      if (store.recovery.tables > 0) roundsWithTables++;
      const replayed = store.stats().lastSequence - history.length;
      assert.ok(
        replayed >= (ackedDurable ? acked : 0),
        `seed ${seed} round ${round}: ${replayed} replayed < ${acked} acked`,
      );
      assert.ok(
        replayed <= ops.length,
        `seed ${seed} round ${round}: replayed more than written`,
      );
      for (const op of ops.slice(0, replayed)) {
        history.push(op);
        if (op.value === undefined) model.delete(op.key);
        else model.set(op.key, op.value);
      }
      const seen = new Map<string, string>();
      for await (const e of store.scan()) {
        seen.set(text(e.key)!, text(e.value)!);
      }
      assert.deepEqual(
        seen,
        model,
        `seed ${seed} round ${round}: state differs from the prefix of ${replayed} ops`,
      );
      await store.close();
    }
  }
  return roundsWithTables;
}

Deno.test("SIGKILL of the REPL at random moments loses no acknowledged write", async () => {
  await replCrashes("repl crash", []);
});

Deno.test("SIGKILL during flushes and merges (tiny memtable) loses no acknowledged write", async () => {
  const withTables = await replCrashes("repl crash, tiny memtable", [
    "--memtable-size",
    "2K",
  ]);
  // Kills can come before the first flush; across all rounds, some must not.
  assert.ok(withTables > 0, "no crash round reopened with a flushed table");
});

for (
  const [mode, ackedDurable, what] of [
    ["interval", true, "loses no acknowledged write"],
    ["none", false, "leaves a prefix of the writes"],
  ] as const
) {
  Deno.test(`SIGKILL under --sync ${mode} ${what}`, async () => {
    await replCrashes(`repl crash, ${mode}`, [
      "--sync",
      mode,
      "--memtable-size",
      "8K",
    ], { ackedDurable, seeds: Math.ceil(SEEDS / 2) });
  });
}

Deno.test("SIGKILL during 64 concurrent library writers loses no acknowledged write", async () => {
  const base = testSeed("library crash");
  const fixture =
    new URL("./fixtures/crash_writer.ts", import.meta.url).pathname;
  for (let s = 0; s < Math.max(1, SEEDS / 2); s++) {
    const seed = (base + s) >>> 0;
    const rng = new Prng(seed);
    await using tmp = await tempDir();
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        "--allow-read",
        "--allow-write",
        fixture,
        tmp.path,
        "64",
      ],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const acked = new Map<number, number>();
    const target = 500 + rng.int(4000);
    let count = 0;
    let killed = false;
    await pumpLines(child.stdout, (line) => {
      if (killed || line === "ready") return;
      const [w, i] = line.split(" ").map(Number) as [number, number];
      acked.set(w, Math.max(acked.get(w) ?? -1, i));
      if (++count >= target) {
        killed = true;
        child.kill("SIGKILL");
      }
    });
    await child.status;
    assert.ok(killed, `seed ${seed}: the writer exited before the kill`);
    const store = await openStore(tmp.path);
    for (let w = 0; w < 64; w++) {
      const last = acked.get(w) ?? -1;
      // Every acked write reads back exactly; each writer's keys are a
      // gap-free prefix (it wrote them in order), with correct values.
      let i = 0;
      for (;; i++) {
        const v = await store.get(`w${w}-${i}`);
        if (v === undefined) break;
        assert.equal(
          text(v),
          expectedValue(w, i),
          `seed ${seed}: w${w}-${i} reads back wrong`,
        );
      }
      assert.ok(
        i - 1 >= last,
        `seed ${seed}: writer ${w} acked ${last} but only ${i - 1} survived`,
      );
      assert.equal(
        await store.count({ prefix: `w${w}-` }),
        i,
        `seed ${seed}: writer ${w} has a gap`,
      );
    }
    await store.close();
  }
});
