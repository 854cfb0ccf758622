/**
 * Blocks of an SSTable: building them with prefix-compressed keys and
 * restart points, and decoding verified contents back into sorted arrays.
 * Format: docs/format/sstable.md, "Data and index blocks".
 *
 * Invariants:
 * - Keys are added in strictly increasing order (checked).
 * - decode* never reads outside the contents and never trusts a length it
 *   has not checked against the bytes left; damage is a CorruptionError.
 */
import {
  assert,
  bytesToBinary,
  getFixed32,
  getFixed64,
  getVarint32,
  lowerBound,
  putBinary,
  putFixed32,
  putFixed64,
  putVarint32,
  varint32Length,
  type VarintResult,
} from "../../util/mod.ts";
import { CorruptionError } from "../errors.ts";
import type { CachedBlock } from "./block_cache.ts";
import { BLOCK_RESTART_INTERVAL, EntryTag } from "../format.ts";

/** Builds one block's contents (without its trailer). */
export class BlockBuilder {
  #buf = new Uint8Array(8192);
  #length = 0;
  #restarts: number[] = [0];
  #sinceRestart = 0;
  #lastKey = "";
  #entries = 0;

  /** Entries added since the last reset. */
  get entries(): number {
    return this.#entries;
  }

  /** The last key added. */
  get lastKey(): string {
    return this.#lastKey;
  }

  /** Bytes the finished contents would take now. */
  get estimatedBytes(): number {
    return this.#length + this.#restarts.length * 4 + 4;
  }

  #reserve(n: number): void {
    if (this.#length + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#length + n) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.#buf.subarray(0, this.#length));
    this.#buf = grown;
  }

  /** Writes an entry header and key suffix; returns where the value goes. */
  #startEntry(key: string, valueLength: number): number {
    assert(
      this.#entries === 0 || key > this.#lastKey,
      "block keys must strictly increase",
    );
    let shared = 0;
    if (this.#sinceRestart < BLOCK_RESTART_INTERVAL) {
      const last = this.#lastKey;
      const n = Math.min(last.length, key.length);
      while (shared < n && last.charCodeAt(shared) === key.charCodeAt(shared)) {
        shared++;
      }
    } else {
      this.#restarts.push(this.#length);
      this.#sinceRestart = 0;
    }
    const unshared = key.length - shared;
    this.#reserve(15 + unshared + valueLength);
    let at = putVarint32(this.#buf, this.#length, shared);
    at = putVarint32(this.#buf, at, unshared);
    at = putVarint32(this.#buf, at, valueLength);
    if (shared === 0) {
      at = putBinary(this.#buf, at, key);
    } else {
      // The suffix is short: copied from the key, no substring made.
      const buf = this.#buf;
      for (let i = shared; i < key.length; i++) buf[at++] = key.charCodeAt(i);
    }
    this.#lastKey = key;
    this.#sinceRestart++;
    this.#entries++;
    return at;
  }

  /** Adds a data entry: a put (value set) or a tombstone (undefined). */
  addData(
    key: string,
    seq: number,
    value: string | Uint8Array | undefined,
    expiry: number,
  ): void {
    const kind = value === undefined ? EntryTag.DELETE : EntryTag.PUT;
    const tag = expiry > 0 ? kind | EntryTag.HAS_EXPIRY : kind;
    const valueLength = 1 + 8 + (expiry > 0 ? 8 : 0) +
      (value === undefined ? 0 : value.length);
    let at = this.#startEntry(key, valueLength);
    this.#buf[at++] = tag;
    putFixed64(this.#buf, at, seq);
    at += 8;
    if (expiry > 0) {
      putFixed64(this.#buf, at, expiry);
      at += 8;
    }
    if (typeof value === "string") {
      at = putBinary(this.#buf, at, value);
    } else if (value !== undefined) {
      this.#buf.set(value, at);
      at += value.length;
    }
    this.#length = at;
  }

  /** Adds an index entry: a block handle. */
  addHandle(key: string, offset: number, size: number): void {
    let at = this.#startEntry(key, 12);
    putFixed64(this.#buf, at, offset);
    putFixed32(this.#buf, at + 8, size);
    at += 12;
    this.#length = at;
  }

  /** The finished contents; the builder must be reset before reuse. */
  finish(): Uint8Array {
    const n = this.#restarts.length;
    this.#reserve(n * 4 + 4);
    let at = this.#length;
    for (const r of this.#restarts) {
      putFixed32(this.#buf, at, r);
      at += 4;
    }
    putFixed32(this.#buf, at, n);
    return this.#buf.subarray(0, at + 4);
  }

  /** Empties the builder. */
  reset(): void {
    this.#length = 0;
    this.#restarts = [0];
    this.#sinceRestart = 0;
    this.#lastKey = "";
    this.#entries = 0;
  }
}

/** Encoded size of a varint-prefixed key, for estimates. */
export function keyBytes(key: string): number {
  return varint32Length(key.length) + key.length;
}

/** A decoded data block: parallel arrays in key order. */
export interface DataBlock {
  keys: string[];
  seqs: number[];
  /**
   * Values as views into the block's verified contents (never written
   * to); undefined for tombstones.
   */
  values: Array<Uint8Array | undefined>;
  expiries: number[];
  /** Approximate memory, for the block cache. */
  bytes: number;
}

/** A decoded index block: last key and handle of each data block. */
export interface IndexBlock {
  keys: string[];
  offsets: number[];
  sizes: number[];
}

const scratch: VarintResult = { value: 0, offset: 0 };

/** Where a block's entries end: the start of its restart array. */
function entriesEnd(contents: Uint8Array, bad: (why: string) => Error): number {
  if (contents.length < 4) throw bad("too short for a restart count");
  const n = getFixed32(contents, contents.length - 4);
  if (n < 1 || n > (contents.length - 4) / 4) {
    throw bad("restart count out of range");
  }
  return contents.length - 4 - n * 4;
}

/** The entry header last read by {@linkcode readHeader}. */
const header = { shared: 0, unshared: 0, valueLength: 0, body: 0 };

/**
 * Reads the entry header at `at` into `header`, checking that the key
 * suffix and value fit before `limit`.
 */
function readHeader(
  contents: Uint8Array,
  at: number,
  limit: number,
  bad: (why: string) => Error,
): void {
  if (!getVarint32(contents, at, limit, scratch)) throw bad("bad entry header");
  header.shared = scratch.value;
  if (!getVarint32(contents, scratch.offset, limit, scratch)) {
    throw bad("bad entry header");
  }
  header.unshared = scratch.value;
  if (!getVarint32(contents, scratch.offset, limit, scratch)) {
    throw bad("bad entry header");
  }
  header.valueLength = scratch.value;
  header.body = scratch.offset;
  const left = limit - header.body;
  if (header.unshared > left || header.valueLength > left - header.unshared) {
    throw bad("entry runs past the block");
  }
}

/**
 * Walks the entries of verified block contents, calling `visit` with each
 * full key and its value range. Throws CorruptionError on any bad length.
 */
function walkEntries(
  contents: Uint8Array,
  file: string,
  offset: number,
  visit: (key: string, start: number, end: number) => void,
): void {
  const bad = blockError(file, offset);
  const limit = entriesEnd(contents, bad);
  let at = 0;
  let last = "";
  let first = true;
  while (at < limit) {
    readHeader(contents, at, limit, bad);
    const { shared, unshared, valueLength } = header;
    at = header.body;
    if (shared > last.length) {
      throw bad("shared prefix longer than the last key");
    }
    const key = (shared === 0 ? "" : last.slice(0, shared)) +
      bytesToBinary(contents, at, at + unshared);
    if (!first && key <= last) throw bad("keys out of order");
    first = false;
    at += unshared;
    visit(key, at, at + valueLength);
    at += valueLength;
    last = key;
  }
}

/** Decodes verified data block contents. */
export function decodeDataBlock(
  contents: Uint8Array,
  file: string,
  offset: number,
): DataBlock {
  const block: DataBlock = {
    keys: [],
    seqs: [],
    values: [],
    expiries: [],
    bytes: contents.length * 2 + 64,
  };
  // One error factory and one result slot for the whole block: decoding
  // allocates only what the block keeps (keys, and views of values).
  const bad = entryError(file, offset);
  const e = parsed;
  walkEntries(contents, file, offset, (key, start, end) => {
    parseValueInto(contents, start, end, bad, e);
    block.keys.push(key);
    block.seqs.push(e.seq);
    block.expiries.push(e.expiry);
    block.values.push(e.value);
  });
  return block;
}

/** Result slot of parseValueInto for decodeDataBlock. */
const parsed: DataValue = { seq: 0, value: undefined, expiry: 0 };

/** The error for a bad block at `offset` of `file`. */
function blockError(file: string, offset: number): (why: string) => Error {
  return (why) =>
    new CorruptionError(
      `Corrupt block in table "${file}" at offset ${offset}: ${why}`,
      file,
      offset,
    );
}

/** The error for a bad entry in the block at `offset` of `file`. */
function entryError(file: string, offset: number): (why: string) => Error {
  return (why) =>
    new CorruptionError(
      `Corrupt entry in table "${file}" block at offset ${offset}: ${why}`,
      file,
      offset,
    );
}

/** A data entry's fields. */
export interface DataValue {
  seq: number;
  /** A view into the block's contents; undefined for a tombstone. */
  value: Uint8Array | undefined;
  expiry: number;
}

/** Parses a data entry's value field `contents[start, end)`. */
export function parseDataValue(
  contents: Uint8Array,
  start: number,
  end: number,
  file: string,
  offset: number,
): DataValue {
  const out: DataValue = { seq: 0, value: undefined, expiry: 0 };
  parseValueInto(contents, start, end, entryError(file, offset), out);
  return out;
}

/** Parses a data entry's value field into `out`. */
function parseValueInto(
  contents: Uint8Array,
  start: number,
  end: number,
  bad: (why: string) => Error,
  out: DataValue,
): void {
  if (end - start < 9) throw bad("value shorter than its tag and sequence");
  const tag = contents[start]!;
  const kind = tag & ~EntryTag.HAS_EXPIRY;
  if (kind !== EntryTag.PUT && kind !== EntryTag.DELETE) {
    throw bad(`unknown tag ${tag}`);
  }
  const seq = getFixed64(contents, start + 1);
  if (seq < 1) throw bad("sequence number out of range");
  let at = start + 9;
  let expiry = 0;
  if (tag & EntryTag.HAS_EXPIRY) {
    if (end - at < 8) throw bad("missing expiry");
    expiry = getFixed64(contents, at);
    if (expiry < 1) throw bad("expiry out of range");
    at += 8;
  }
  if (kind === EntryTag.DELETE && at !== end) {
    throw bad("tombstone with a value");
  }
  out.seq = seq;
  out.value = kind === EntryTag.PUT ? contents.subarray(at, end) : undefined;
  out.expiry = expiry;
}

/** Reused buffer in which BlockCursor.next assembles each key. */
let nextScratch = new Uint8Array(256);

/** Reused buffer in which searchDataBlock rebuilds prefix-compressed keys. */
let keyScratch = new Uint8Array(256);

/**
 * Compares binary string `key` with the bytes `b[start, start + n)`:
 * negative, zero or positive, like memcmp.
 */
function compareKeyBytes(
  key: string,
  b: Uint8Array,
  start: number,
  n: number,
): number {
  const m = Math.min(key.length, n);
  for (let i = 0; i < m; i++) {
    const d = key.charCodeAt(i) - b[start + i]!;
    if (d !== 0) return d;
  }
  return key.length - n;
}

/**
 * Where a search for `key` starts scanning: the offset of the last restart
 * whose key is below `key` (with `orEqual`, at or below it), or of the
 * first restart. Checks the restarts it reads.
 */
function scanStart(
  contents: Uint8Array,
  limit: number,
  key: string,
  orEqual: boolean,
  bad: (why: string) => Error,
): number {
  if (limit === 0) return 0;
  if (getFixed32(contents, limit) !== 0) {
    throw bad("first restart is not at the block's start");
  }
  let lo = 0;
  let hi = (contents.length - 4 - limit) / 4 - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    const at = getFixed32(contents, limit + mid * 4);
    if (at >= limit) throw bad("restart offset out of range");
    readHeader(contents, at, limit, bad);
    if (header.shared !== 0) throw bad("restart entry with a shared prefix");
    const c = compareKeyBytes(key, contents, header.body, header.unshared);
    if (c < 0 || (c === 0 && !orEqual)) hi = mid - 1;
    else lo = mid;
  }
  const at = getFixed32(contents, limit + lo * 4);
  if (at >= limit) throw bad("restart offset out of range");
  return at;
}

/**
 * Reads the entry header at `at` into `header` and rebuilds the entry's key
 * in keyScratch over the previous one (`lastLength` bytes; -1 before the
 * first entry), checking that it sorts after it. Returns its length.
 */
function scratchKey(
  contents: Uint8Array,
  at: number,
  limit: number,
  lastLength: number,
  bad: (why: string) => Error,
): number {
  readHeader(contents, at, limit, bad);
  const { shared, unshared, body } = header;
  if (shared > Math.max(lastLength, 0)) {
    throw bad("shared prefix longer than the last key");
  }
  const keyLength = shared + unshared;
  if (keyLength > keyScratch.length) {
    const grown = new Uint8Array(Math.max(keyLength, keyScratch.length * 2));
    grown.set(keyScratch.subarray(0, Math.max(lastLength, 0)));
    keyScratch = grown;
  }
  // The first byte past the shared prefix that differs from the last key
  // decides the order; none differing, the longer key is greater.
  let order = 0;
  for (let j = 0; j < unshared; j++) {
    const b = contents[body + j]!;
    if (order === 0 && shared + j < lastLength) {
      const was = keyScratch[shared + j]!;
      if (b !== was) order = b > was ? 1 : -1;
    }
    keyScratch[shared + j] = b;
  }
  if (order === 0) order = keyLength > lastLength ? 1 : -1;
  if (lastLength >= 0 && order < 0) throw bad("keys out of order");
  return keyLength;
}

/**
 * Finds `key` in verified data block contents without decoding the block:
 * a binary search over the restart points, then a scan of at most one
 * restart interval. Returns the entry's fields, or undefined when absent.
 * Throws CorruptionError on any bad length.
 */
export function searchDataBlock(
  contents: Uint8Array,
  key: string,
  file: string,
  offset: number,
): DataValue | undefined {
  const bad = blockError(file, offset);
  const limit = entriesEnd(contents, bad);
  let at = scanStart(contents, limit, key, true, bad);
  // Keys are rebuilt in a reused byte buffer and compared as bytes: no
  // string is made for the entries scanned past.
  let keyLength = -1;
  for (let i = 0; at < limit && i <= BLOCK_RESTART_INTERVAL * 2; i++) {
    keyLength = scratchKey(contents, at, limit, keyLength, bad);
    const { unshared, valueLength, body } = header;
    const valueStart = body + unshared;
    const c = compareKeyBytes(key, keyScratch, 0, keyLength);
    if (c === 0) {
      return parseDataValue(
        contents,
        valueStart,
        valueStart + valueLength,
        file,
        offset,
      );
    }
    if (c < 0) return undefined;
    at = valueStart + valueLength;
  }
  return undefined;
}

/**
 * A forward cursor over verified data block contents that parses one entry
 * at a time: a scan reads the entries it needs straight from the cached
 * block, with no decoded copy of the block kept (or charged to the cache).
 * The current entry is in the public fields; its value is a view into the
 * contents, valid while the contents are. Damage is a CorruptionError, as
 * in a decode.
 */
export class BlockCursor {
  key = "";
  seq = 0;
  value: Uint8Array | undefined = undefined;
  expiry = 0;
  /** The cached block this cursor keeps pinned (TableReader.cursor). */
  pinned: CachedBlock | undefined = undefined;
  readonly #contents: Uint8Array;
  readonly #limit: number;
  readonly #bad: (why: string) => Error;
  readonly #badEntry: (why: string) => Error;
  /** Offset of the next entry to parse. */
  #at = 0;
  /** Whether the current key came from a restart point (no order check). */
  #fresh = true;

  constructor(contents: Uint8Array, file: string, offset: number) {
    this.#contents = contents;
    this.#bad = blockError(file, offset);
    this.#badEntry = entryError(file, offset);
    this.#limit = entriesEnd(contents, this.#bad);
  }

  /** Moves to the first entry; false when the block has none. */
  first(): boolean {
    this.#at = 0;
    this.#fresh = true;
    this.key = "";
    return this.next();
  }

  /** Moves to the first entry with a key >= `target`; false when none. */
  seek(target: string): boolean {
    const contents = this.#contents;
    const limit = this.#limit;
    const bad = this.#bad;
    let at = scanStart(contents, limit, target, false, bad);
    // Keys passed over are rebuilt as bytes and compared as bytes: a
    // string is made only for the entry landed on.
    let keyLength = -1;
    while (at < limit) {
      keyLength = scratchKey(contents, at, limit, keyLength, bad);
      const { unshared, valueLength, body } = header;
      const valueStart = body + unshared;
      at = valueStart + valueLength;
      if (compareKeyBytes(target, keyScratch, 0, keyLength) <= 0) {
        this.#land(bytesToBinary(keyScratch, 0, keyLength), valueStart, at);
        return true;
      }
    }
    this.#at = limit;
    return false;
  }

  /** Makes the entry with `key` and value field [start, end) current. */
  #land(key: string, start: number, end: number): void {
    parseValueInto(this.#contents, start, end, this.#badEntry, parsed);
    this.key = key;
    this.seq = parsed.seq;
    this.value = parsed.value;
    this.expiry = parsed.expiry;
    this.#fresh = false;
    this.#at = end;
  }

  /** Moves to the next entry; false at the end of the block. */
  next(): boolean {
    const contents = this.#contents;
    const limit = this.#limit;
    let at = this.#at;
    if (at >= limit) return false;
    let shared = contents[at]!;
    let unshared = contents[at + 1]!;
    let valueLength = contents[at + 2]!;
    if ((shared | unshared | valueLength) < 0x80 && at + 3 <= limit) {
      // One-byte lengths, the common case: no varint decoding.
      at += 3;
      if (unshared + valueLength > limit - at) {
        throw this.#bad("entry runs past the block");
      }
    } else {
      readHeader(contents, at, limit, this.#bad);
      ({ shared, unshared, valueLength } = header);
      at = header.body;
    }
    const last = this.key;
    if (shared > last.length) {
      throw this.#bad("shared prefix longer than the last key");
    }
    // The key is assembled as bytes and made into one flat string: joining
    // a slice of the last key with the new bytes made three strings, the
    // last a rope that every comparison had to flatten again.
    const n = shared + unshared;
    if (n > nextScratch.length) {
      nextScratch = new Uint8Array(Math.max(n, nextScratch.length * 2));
    }
    const scratch = nextScratch;
    for (let j = 0; j < shared; j++) scratch[j] = last.charCodeAt(j);
    // The first new byte that differs from the last key decides the order;
    // none differing, the longer key is greater.
    let order = 0;
    for (let j = 0; j < unshared; j++) {
      const b = contents[at + j]!;
      scratch[shared + j] = b;
      if (order === 0 && shared + j < last.length) {
        const was = last.charCodeAt(shared + j);
        if (b !== was) order = b > was ? 1 : -1;
      }
    }
    if (order === 0) order = n > last.length ? 1 : -1;
    if (!this.#fresh && order < 0) throw this.#bad("keys out of order");
    at += unshared;
    this.#land(bytesToBinary(scratch, 0, n), at, at + valueLength);
    return true;
  }
}

/** Forward iteration over a decoded block, as {@linkcode BlockCursor} does. */
export class DecodedCursor {
  key = "";
  seq = 0;
  value: Uint8Array | undefined = undefined;
  expiry = 0;
  /** As in {@linkcode BlockCursor}. */
  pinned: CachedBlock | undefined = undefined;
  #i = -1;

  constructor(private readonly block: DataBlock) {}

  /** Moves to the first entry; false when the block has none. */
  first(): boolean {
    this.#i = -1;
    return this.next();
  }

  /** Moves to the first entry with a key >= `target`; false when none. */
  seek(target: string): boolean {
    this.#i = lowerBound(this.block.keys, target) - 1;
    return this.next();
  }

  /** Moves to the next entry; false at the end of the block. */
  next(): boolean {
    const b = this.block;
    const i = ++this.#i;
    if (i >= b.keys.length) return false;
    this.key = b.keys[i]!;
    this.seq = b.seqs[i]!;
    this.value = b.values[i];
    this.expiry = b.expiries[i]!;
    return true;
  }
}

/** Decodes verified index block contents. */
export function decodeIndexBlock(
  contents: Uint8Array,
  file: string,
  offset: number,
): IndexBlock {
  const index: IndexBlock = { keys: [], offsets: [], sizes: [] };
  walkEntries(contents, file, offset, (key, start, end) => {
    if (end - start !== 12) {
      throw new CorruptionError(
        `Corrupt index in table "${file}" at offset ${offset}: bad block handle`,
        file,
        offset,
      );
    }
    const off = getFixed64(contents, start);
    if (off < 0) {
      throw new CorruptionError(
        `Corrupt index in table "${file}" at offset ${offset}: handle offset out of range`,
        file,
        offset,
      );
    }
    index.keys.push(key);
    index.offsets.push(off);
    index.sizes.push(getFixed32(contents, start + 8));
  });
  return index;
}
