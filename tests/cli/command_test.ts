/** The REPL parser: commands, arity, quoting, LIMIT. */
import assert from "node:assert/strict";
import { parseCommand } from "../../cli/command.ts";
import { renderBytes, renderValue } from "../../cli/render.ts";
import { complete } from "../../cli/repl.ts";

const enc = (s: string) => new TextEncoder().encode(s);

Deno.test("PUT takes the rest of the line as the value, spaces kept", () => {
  assert.deepEqual(parseCommand("PUT k hello world"), {
    name: "PUT",
    key: enc("k"),
    value: enc("hello world"),
  });
  assert.deepEqual(parseCommand("put k   x  "), {
    name: "PUT",
    key: enc("k"),
    value: enc("  x  "),
  });
  assert.deepEqual(parseCommand("PUT k "), {
    name: "PUT",
    key: enc("k"),
    value: enc(""),
  });
  assert.deepEqual(parseCommand('PUT "a key" v'), {
    name: "PUT",
    key: enc("a key"),
    value: enc("v"),
  });
  assert.equal(parseCommand("PUT k").name, "ERROR");
  assert.equal(parseCommand("PUT").name, "ERROR");
});

Deno.test("commands are case-insensitive and check their arity", () => {
  assert.deepEqual(parseCommand("get k"), { name: "GET", key: enc("k") });
  assert.deepEqual(parseCommand("  Delete   k  "), {
    name: "DELETE",
    key: enc("k"),
  });
  assert.deepEqual(parseCommand("exists k"), { name: "EXISTS", key: enc("k") });
  assert.deepEqual(parseCommand("exit"), { name: "QUIT" });
  assert.deepEqual(parseCommand("QUIT"), { name: "QUIT" });
  assert.deepEqual(parseCommand(""), { name: "EMPTY" });
  const e = parseCommand("GET a b");
  assert.equal(e.name, "ERROR");
  assert.match(
    (e as { message: string }).message,
    /wrong number of arguments for GET; usage: GET key/,
  );
  assert.match(
    (parseCommand("FROB x") as { message: string }).message,
    /unknown command "FROB"/,
  );
  assert.equal(parseCommand("STATS now").name, "ERROR");
});

Deno.test("SCAN, RANGE and COUNT take optional prefixes and LIMIT", () => {
  assert.deepEqual(parseCommand("SCAN"), {
    name: "SCAN",
    prefix: undefined,
    limit: undefined,
  });
  assert.deepEqual(parseCommand("scan user: limit 5"), {
    name: "SCAN",
    prefix: enc("user:"),
    limit: 5,
  });
  assert.deepEqual(parseCommand("SCAN LIMIT 2"), {
    name: "SCAN",
    prefix: undefined,
    limit: 2,
  });
  assert.deepEqual(parseCommand("RANGE a c"), {
    name: "RANGE",
    start: enc("a"),
    end: enc("c"),
    limit: undefined,
  });
  assert.deepEqual(parseCommand("RANGE a c LIMIT 0"), {
    name: "RANGE",
    start: enc("a"),
    end: enc("c"),
    limit: 0,
  });
  assert.deepEqual(parseCommand("COUNT p"), {
    name: "COUNT",
    prefix: enc("p"),
  });
  assert.match(
    (parseCommand("SCAN LIMIT x") as { message: string }).message,
    /LIMIT needs a non-negative integer/,
  );
  assert.equal(parseCommand("RANGE a").name, "ERROR");
});

Deno.test("quoted keys hold spaces and escaped bytes", () => {
  assert.deepEqual(parseCommand('GET "\\x00\\xff\\n\\"\\\\"'), {
    name: "GET",
    key: Uint8Array.of(0, 255, 10, 34, 92),
  });
  assert.deepEqual(parseCommand('GET "é"'), { name: "GET", key: enc("é") });
  assert.match(
    (parseCommand('GET "abc') as { message: string }).message,
    /unterminated quote/,
  );
  assert.match(
    (parseCommand('GET "\\q"') as { message: string }).message,
    /bad escape/,
  );
  assert.match(
    (parseCommand('GET "a"b') as { message: string }).message,
    /closing quote/,
  );
});

Deno.test("rendered keys parse back to the same bytes", () => {
  const samples = [
    Uint8Array.of(0, 1, 2),
    enc("plain"),
    enc("with space"),
    enc('q"uote'),
    enc("é"),
    enc("ключ значение ✓ 🎉"),
    // A leading byte order mark is kept, quoted or not.
    Uint8Array.of(0xef, 0xbb, 0xbf),
    Uint8Array.of(0xef, 0xbb, 0xbf, 0x20, 0x61),
    Uint8Array.of(0xef, 0xbb, 0xbf, 0x61),
    enc("tab\there \u0085 \u00a0"),
    Uint8Array.of(0xff),
    new Uint8Array(0),
  ];
  for (const key of samples) {
    const parsed = parseCommand(`GET ${renderBytes(key)}`);
    assert.deepEqual(parsed, { name: "GET", key }, renderBytes(key));
  }
  // Valid UTF-8 keeps its characters when quoted; invalid bytes are escaped.
  assert.equal(renderBytes(enc("ключ значение ✓")), '"ключ значение ✓"');
  assert.equal(renderBytes(enc('a "q" \u0085')), '"a \\"q\\" \\xc2\\x85"');
  assert.equal(renderBytes(Uint8Array.of(0x61, 0x20, 0xff)), '"a \\xff"');
  assert.equal(renderValue(enc("hello world")), "hello world");
  assert.equal(renderValue(enc("two\nlines")), '"two\\nlines"');
  // A stored error text is not a missing key; an escape sequence is not
  // sent to the terminal; a tab stays.
  assert.equal(
    renderValue(enc("Error: key not found")),
    '"Error: key not found"',
  );
  assert.equal(renderValue(enc("\x1b[31mred")), '"\\x1b[31mred"');
  assert.equal(renderValue(enc("a\tb")), "a\tb");
});

Deno.test("tab completion offers matching command names", () => {
  assert.deepEqual(complete("st"), [["stats "], "st"]);
  assert.deepEqual(complete("E"), [["EXISTS ", "EXIT "], "E"]);
  assert.deepEqual(complete("GET k"), [[], "GET k"]);
});
