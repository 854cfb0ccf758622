/**
 * Validation and conversion of user input (keys, values, scan bounds) to
 * the binary strings the engine holds. Bad input is a TypeError or
 * RangeError that says what to do; nothing is stored.
 */
import {
  BytePool,
  bytesToBinary,
  putBinary,
  textToBinary,
} from "../util/mod.ts";
import { KEY_BYTES_MAX, VALUE_BYTES_MAX } from "./limits.ts";

/** Keys and values are bytes; strings are UTF-8 encoded. */
export type Bytes = string | Uint8Array;

/** A key as a binary string; throws on a bad or oversized key. */
export function keyToBinary(key: Bytes): string {
  let binary: string;
  if (typeof key === "string") binary = textToBinary(key, "Key");
  else if (key instanceof Uint8Array) binary = bytesToBinary(key);
  else throw new TypeError("Key must be a string or a Uint8Array");
  if (binary.length === 0) throw new RangeError("Key must not be empty");
  if (binary.length > KEY_BYTES_MAX) {
    throw new RangeError(
      `Key is ${binary.length} bytes; the limit is ${KEY_BYTES_MAX} (KEY_BYTES_MAX)`,
    );
  }
  return binary;
}

/**
 * The key of a point read, as bytes for the memtables (whose hash table a
 * get probes by hashing and comparing bytes) and as a binary string only
 * once a table is asked (made then, or the caller's own string when it is
 * one already). A string key's chars are copied out once: reading a key
 * built by concatenation (a rope, as most keys are) char by char, to hash it
 * and then to compare it, went through an indirection per char, and a get
 * of 100k such keys from a memtable took 830 ns where one of flat strings
 * took 340. Reads are synchronous: an instance serves every read of one
 * caller (the store's gets, the reads of keys already checked), one after
 * another. Text outside ASCII is encoded, and its binary string made, at
 * once.
 */
export class ReadKey {
  /** The key is `bytes[0, length)`. */
  bytes: Uint8Array;
  length = 0;
  #scratch = new Uint8Array(KEY_BYTES_MAX);
  #binary: string | undefined = undefined;

  constructor() {
    this.bytes = this.#scratch;
  }

  /** Sets the key from user input; throws as {@linkcode keyToBinary} does. */
  set(key: Bytes): this {
    if (typeof key === "string") {
      const n = key.length;
      // Empty or too long whatever its encoding: keyToBinary throws.
      if (n === 0 || n > KEY_BYTES_MAX) return this.setBinary(keyToBinary(key));
      const out = this.#scratch;
      let all = 0;
      for (let i = 0; i < n; i++) {
        const c = key.charCodeAt(i);
        out[i] = c;
        all |= c;
      }
      // Not ASCII: the UTF-8 bytes differ from the chars.
      if (all >= 0x80) return this.setBinary(keyToBinary(key));
      this.bytes = out;
      this.length = n;
      this.#binary = key;
      return this;
    }
    if (
      !(key instanceof Uint8Array) || key.length === 0 ||
      key.length > KEY_BYTES_MAX
    ) {
      keyToBinary(key); // Throws: not bytes, or empty, or too long.
    }
    this.bytes = key as Uint8Array;
    this.length = key.length;
    this.#binary = undefined;
    return this;
  }

  /** Sets the key from a binary string that has passed keyToBinary. */
  setBinary(binary: string): this {
    const out = this.#scratch;
    const n = binary.length;
    for (let i = 0; i < n; i++) out[i] = binary.charCodeAt(i);
    this.bytes = out;
    this.length = n;
    this.#binary = binary;
    return this;
  }

  /**
   * Lets go of the key once the read is done: a caller's array (maybe a
   * view of a large buffer) is not kept until the next read.
   */
  release(): void {
    this.bytes = this.#scratch;
    this.length = 0;
    this.#binary = undefined;
  }

  /** The key as a binary string. */
  get binary(): string {
    return this.#binary ??= bytesToBinary(this.bytes, 0, this.length);
  }
}

/** A scan bound as a binary string. */
export function boundToBinary(bound: Bytes, what: string): string {
  if (typeof bound === "string") return textToBinary(bound, `Scan ${what}`);
  if (bound instanceof Uint8Array) return bytesToBinary(bound);
  throw new TypeError(`Scan ${what} must be a string or a Uint8Array`);
}

/**
 * The pool the values of writes are copied into (by puts, and by recovery
 * as it decodes the log), apart from the pool of read results: its chunks
 * then live about as long as the memtables holding their values, not as
 * long as a result some caller keeps.
 */
export const valuePool: BytePool = new BytePool();

/**
 * A value as bytes of its own (a copy: the caller may reuse its array);
 * throws on a bad or oversized value.
 */
export function valueToBytes(value: Bytes): Uint8Array {
  if (typeof value === "string") {
    // A UTF-8 encoding is at most 3 bytes per UTF-16 unit: check before
    // encoding a string far over the limit.
    if (value.length > VALUE_BYTES_MAX) throw valueTooLarge(value.length);
    const binary = textToBinary(value, "Value");
    if (binary.length > VALUE_BYTES_MAX) throw valueTooLarge(binary.length);
    const out = valuePool.alloc(binary.length);
    putBinary(out, 0, binary);
    return out;
  }
  if (value instanceof Uint8Array) {
    if (value.length > VALUE_BYTES_MAX) throw valueTooLarge(value.length);
    return valuePool.copy(value);
  }
  throw new TypeError("Value must be a string or a Uint8Array");
}

function valueTooLarge(bytes: number): RangeError {
  return new RangeError(
    `Value is at least ${bytes} bytes; the limit is ${VALUE_BYTES_MAX} (VALUE_BYTES_MAX)`,
  );
}
