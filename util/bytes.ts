/**
 * Byte helpers. kv keys are bytes; in memory they are held as "binary"
 * strings (one char per byte, code units 0-255), which V8 compares faster
 * than `Uint8Array`s and which sort in bytewise order.
 */
import { Buffer } from "node:buffer";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: false });

/** Strings at least this long are tried with the native UTF-8 encoder. */
const NATIVE_ENCODE_MIN = 48;

/** UTF-8 encodes a string. */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Decodes UTF-8, replacing invalid sequences with U+FFFD. */
export function fromUtf8(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** Bytewise comparison: negative, zero or positive, like memcmp. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** True when both arrays hold the same bytes. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Node's Latin-1 decoder (`Buffer.prototype.latin1Slice`), which maps each
 * byte to the char with the same code: a binary string made natively, 3-70
 * times faster than `String.fromCharCode` (351 against 94 ns for 100 random
 * bytes, 11 µs against 0.16 µs for 4 KiB). Called with a plain Uint8Array
 * as `this`. Checked once at load on all 256 bytes; undefined (and the
 * fallback below used) if it is missing or maps any byte differently.
 */
const latin1Slice = nativeLatin1();

function nativeLatin1():
  | ((this: Uint8Array, start: number, end: number) => string)
  | undefined {
  try {
    const f = (Buffer.prototype as unknown as {
      latin1Slice?: (this: Uint8Array, start: number, end: number) => string;
    }).latin1Slice;
    if (typeof f !== "function") return undefined;
    const all = new Uint8Array(258);
    for (let i = 0; i < 256; i++) all[i + 1] = i;
    const s = f.call(all, 1, 257);
    if (s.length !== 256) return undefined;
    for (let i = 0; i < 256; i++) if (s.charCodeAt(i) !== i) return undefined;
    return f;
  } catch {
    return undefined;
  }
}

/** Up to this many bytes a loop beats a call into the native decoder. */
const SHORT_BINARY_BYTES = 8;
const CHUNK = 0x2000;

/** The binary string of `bytes[start, end)`: one char per byte. */
export function bytesToBinary(
  bytes: Uint8Array,
  start = 0,
  end: number = bytes.length,
): string {
  const n = end - start;
  if (n <= SHORT_BINARY_BYTES) {
    let s = "";
    for (let i = start; i < end; i++) s += String.fromCharCode(bytes[i]!);
    return s;
  }
  if (latin1Slice !== undefined) return latin1Slice.call(bytes, start, end);
  return bytesToBinaryFallback(bytes, start, end);
}

/** {@linkcode bytesToBinary} without the native decoder. */
export function bytesToBinaryFallback(
  bytes: Uint8Array,
  start: number,
  end: number,
): string {
  // ASCII is its own UTF-8, and the native decoder makes the string
  // several times faster than fromCharCode (checking costs a loop).
  let ascii = true;
  for (let i = start; i < end; i++) {
    if (bytes[i]! >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) {
    return decoder.decode(
      start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end),
    );
  }
  const parts: string[] = [];
  for (let i = start; i < end; i += CHUNK) {
    const sub = bytes.subarray(i, Math.min(end, i + CHUNK));
    parts.push(String.fromCharCode.apply(null, sub as unknown as number[]));
  }
  return parts.join("");
}

/** Largest array a {@linkcode BytePool} carves from a chunk. */
const POOL_COPY_BYTES_MAX = 4096;
const POOL_BYTES = 64 * 1024;

/**
 * Small byte arrays carved from shared 64 KiB chunks, as Node's Buffer pool
 * does: allocating a small ArrayBuffer costs V8 about 1 µs, a view about
 * 0.1 µs. Each array owns its bytes; only `.buffer` is shared, and a chunk
 * lives as long as any array carved from it. Arrays over 4 KiB get a
 * buffer of their own. A chunk a caller detaches (by transferring the
 * `.buffer` of an array from it) empties the arrays carved from it, as with
 * Node's pool, and the pool goes on with a fresh chunk.
 */
export class BytePool {
  #chunk = new ArrayBuffer(POOL_BYTES);
  /** The chunk as words and as bytes, for copyWords; made when needed. */
  #words: Int32Array | undefined;
  #bytes: Uint8Array | undefined;
  #at = 0;

  /** `n` bytes of the pool; their contents are garbage. */
  alloc(n: number): Uint8Array {
    if (n > POOL_COPY_BYTES_MAX) return new Uint8Array(n);
    this.#room(n);
    // A view made by the constructor, not subarray(): no species lookup (a
    // key's view took 57-72 ns against 92-99 ns, with its copy).
    const out = new Uint8Array(this.#chunk, this.#at, n);
    // Keep arrays 8-byte aligned so DataViews over them stay cheap.
    this.#at = (this.#at + n + 7) & ~7;
    return out;
  }

  /** Makes room for `n` more bytes in the chunk (n <= POOL_BYTES). */
  #room(n: number): void {
    // A detached chunk has byteLength 0: then a fresh one too (even for
    // n = 0).
    if (this.#chunk.byteLength === 0 || this.#at + n > this.#chunk.byteLength) {
      this.#chunk = new ArrayBuffer(POOL_BYTES);
      this.#words = undefined;
      this.#bytes = undefined;
      this.#at = 0;
    }
  }

  /**
   * A copy of `bytes[start, start + n)` in the pool, where `words` is
   * `bytes` as an Int32Array over the same buffer from its start and
   * `start` is a multiple of 4: copied a word at a time (arrays from the
   * pool start on 8-byte boundaries), with no view of `bytes` made.
   * REQUIRES: 0 <= start, start + n <= bytes.length.
   */
  copyWords(
    bytes: Uint8Array,
    words: Int32Array,
    start: number,
    n: number,
  ): Uint8Array {
    if (n > POOL_COPY_BYTES_MAX) return this.copy(bytes, start, start + n);
    this.#room(n);
    const at = this.#at;
    const to = this.#words ??= new Int32Array(this.#chunk);
    const toBytes = this.#bytes ??= new Uint8Array(this.#chunk);
    const whole = n >>> 2;
    const from = start >>> 2;
    const base = at >>> 2;
    for (let i = 0; i < whole; i++) to[base + i] = words[from + i]!;
    for (let i = whole << 2; i < n; i++) toBytes[at + i] = bytes[start + i]!;
    const out = new Uint8Array(this.#chunk, at, n);
    this.#at = (at + n + 7) & ~7;
    return out;
  }

  /**
   * A copy of `bytes[start, end)` in the pool. REQUIRES:
   * 0 <= start <= end <= bytes.length (not clamped, as subarray() would).
   */
  copy(bytes: Uint8Array, start = 0, end: number = bytes.length): Uint8Array {
    const out = this.alloc(end - start);
    copyInto(out, 0, bytes, start, end);
    return out;
  }
}

/**
 * Up to this many bytes a loop beats `set()` on a subarray (a loop copied
 * 16 bytes in 19 ns, 64 in 68 ns; `set()` took 32-34 ns for 16 to 200).
 */
const SHORT_COPY_BYTES = 24;

/**
 * Copies `src[start, end)` to `dst` at `at`; returns the end. REQUIRES:
 * room in `dst`, and 0 <= start <= end <= src.length (the range is not
 * clamped, as subarray() would: past src's end a copy reads its buffer).
 */
export function copyInto(
  dst: Uint8Array,
  at: number,
  src: Uint8Array,
  start: number,
  end: number,
): number {
  const n = end - start;
  if (n <= SHORT_COPY_BYTES) {
    for (let i = 0; i < n; i++) dst[at + i] = src[start + i]!;
  } else if (start === 0 && end === src.length) {
    // All of src: no view of it to make (a view is about 100 bytes of
    // garbage, and a put copied each value through one).
    dst.set(src, at);
  } else {
    // A view made by the constructor (no species lookup, as subarray has).
    dst.set(new Uint8Array(src.buffer, src.byteOffset + start, n), at);
  }
  return at + n;
}

/** The pool of the copies kv hands to callers (read results). */
export const resultPool: BytePool = new BytePool();

/**
 * The pool of the small working buffers objects keep while they live (a
 * cursor's key buffer): a scan makes several cursors, and a fresh 64-byte
 * array for each cost more than a tenth of a seek of 100 entries.
 */
export const bufferPool: BytePool = new BytePool();

/** A fresh copy of `bytes`, from the pool of results when small. */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  return resultPool.copy(bytes);
}

/**
 * False when a sample of a binary string's chars shows bytes from 0x80:
 * then the native encoder, which stops at the first of them, is not tried.
 */
function mayBeAscii(binary: string): boolean {
  const n = binary.length;
  return (binary.charCodeAt(0) | binary.charCodeAt(n >> 1) |
    binary.charCodeAt(n - 1)) < 0x80;
}

/**
 * Fresh bytes of a binary string, from the pool of results when small.
 * REQUIRES: every code unit is below 256.
 */
export function binaryToBytes(binary: string): Uint8Array {
  const n = binary.length;
  const out = resultPool.alloc(n);
  // As in putBinary: ASCII through the native encoder, else a loop.
  if (
    n >= NATIVE_ENCODE_MIN && mayBeAscii(binary) &&
    encoder.encodeInto(binary, out).read === n
  ) {
    return out;
  }
  for (let i = 0; i < n; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/**
 * The binary string of a text's UTF-8 encoding. ASCII text is its own binary
 * string, so the common case allocates nothing new.
 */
export function textToBinary(text: string, what = "Text"): string {
  // A regular expression checks in native code: 40 ns for a 16-char key
  // where a charCodeAt loop took 60-75 (a key made by concatenation is a
  // rope, each char read through an indirection).
  if (!NON_ASCII.test(text)) return text;
  // A lone surrogate has no UTF-8 encoding (the encoder would write
  // U+FFFD in its place, so that two different strings became one key).
  if (!text.isWellFormed()) {
    throw new TypeError(
      `${what} is not well-formed UTF-16: a lone surrogate at index ${
        loneSurrogateAt(text)
      } has no UTF-8 encoding`,
    );
  }
  return bytesToBinary(encoder.encode(text));
}

/** Index of the first lone surrogate of `text`, or -1. */
function loneSurrogateAt(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        i++;
        continue;
      }
      return i;
    }
    if (c >= 0xdc00 && c <= 0xdfff) return i;
  }
  return -1;
}

/** Matches a string with any char outside ASCII. */
const NON_ASCII = /[\u0080-\uffff]/;

/**
 * Writes a binary string's bytes into `buf` at `offset`; returns the end.
 * REQUIRES: room for `binary.length` bytes.
 */
export function putBinary(
  buf: Uint8Array,
  offset: number,
  binary: string,
): number {
  const n = binary.length;
  if (n >= NATIVE_ENCODE_MIN && mayBeAscii(binary)) {
    // ASCII is its own UTF-8 and the native encoder copies it several
    // times faster than a loop. Any char from 0x80 takes two bytes, so
    // the encoder then stops short of the end and the loop below redoes it.
    const r = encoder.encodeInto(binary, buf.subarray(offset, offset + n));
    if (r.read === n) return offset + n;
  }
  for (let i = 0; i < n; i++) buf[offset++] = binary.charCodeAt(i);
  return offset;
}

/**
 * The smallest binary string greater than every string starting with
 * `prefix`, or undefined when no such bound exists (prefix all 0xff).
 */
export function prefixSuccessor(prefix: string): string | undefined {
  let end = prefix.length;
  while (end > 0 && prefix.charCodeAt(end - 1) === 0xff) end--;
  if (end === 0) return undefined;
  return prefix.slice(0, end - 1) +
    String.fromCharCode(prefix.charCodeAt(end - 1) + 1);
}
