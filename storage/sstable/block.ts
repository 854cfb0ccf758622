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
  bufferPool,
  bytesToBinary,
  copyInto,
  getFixed32,
  getFixed64,
  getVarint32,
  putBinary,
  putFixed32,
  putFixed64,
  putVarint32,
  varint32Length,
  type VarintResult,
} from "../../util/mod.ts";
import { CorruptionError } from "../errors.ts";
import { BLOCK_RESTART_INTERVAL, EntryTag } from "../format.ts";

/** Reused buffer for keys and values given to a BlockBuilder as strings. */
let stringScratch = new Uint8Array(256);

/** `s` (a binary string) as bytes in stringScratch, for the builders. */
function scratchOf(s: string): Uint8Array {
  if (s.length > stringScratch.length) {
    stringScratch = new Uint8Array(
      Math.max(s.length, stringScratch.length * 2),
    );
  }
  putBinary(stringScratch, 0, s);
  return stringScratch;
}

/**
 * Builds one block's contents (without its trailer). Keys are taken as
 * bytes (a merge copies them straight from the blocks it reads); the
 * string forms convert first.
 */
export class BlockBuilder {
  #buf = new Uint8Array(8192);
  #length = 0;
  #restarts: number[] = [0];
  #sinceRestart = 0;
  /**
   * The last key added, kept across reset() so that a table writer
   * checks its keys' order across blocks too; -1 before the first.
   */
  #last = new Uint8Array(64);
  #lastLength = -1;
  #entries = 0;

  /** Entries added since the last reset. */
  get entries(): number {
    return this.#entries;
  }

  /** The last key added (a binary string). */
  get lastKey(): string {
    return this.#lastLength < 0
      ? ""
      : bytesToBinary(this.#last, 0, this.#lastLength);
  }

  /**
   * The buffer holding the last key added, in its first
   * {@linkcode lastKeyLength} bytes; valid until the next add.
   */
  get lastKeyBuffer(): Uint8Array {
    return this.#last;
  }

  /** The last key's length (0 before the first). */
  get lastKeyLength(): number {
    return Math.max(0, this.#lastLength);
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

  /**
   * Writes the header and key suffix of an entry whose key is
   * `key[keyAt, keyAt + keyLength)`; returns where its value goes.
   */
  #startEntry(
    key: Uint8Array,
    keyAt: number,
    keyLength: number,
    valueLength: number,
  ): number {
    // The common prefix with the last key, which also decides the order:
    // the first differing byte must be greater, or the new key longer.
    let last = this.#last;
    const lastLength = this.#lastLength;
    const n = Math.min(lastLength, keyLength);
    let common = 0;
    while (common < n && last[common] === key[keyAt + common]) common++;
    assert(
      lastLength < 0 ||
        (common < n ? key[keyAt + common]! > last[common]! : keyLength > n),
      "block keys must strictly increase",
    );
    let shared = common;
    if (this.#entries === 0) {
      shared = 0;
    } else if (this.#sinceRestart >= BLOCK_RESTART_INTERVAL) {
      this.#restarts.push(this.#length);
      this.#sinceRestart = 0;
      shared = 0;
    }
    const unshared = keyLength - shared;
    this.#reserve(15 + unshared + valueLength);
    const buf = this.#buf;
    let at = this.#length;
    if ((shared | unshared | valueLength) < 0x80) {
      buf[at] = shared;
      buf[at + 1] = unshared;
      buf[at + 2] = valueLength;
      at += 3;
    } else {
      at = putVarint32(buf, at, shared);
      at = putVarint32(buf, at, unshared);
      at = putVarint32(buf, at, valueLength);
    }
    for (let i = shared; i < keyLength; i++) buf[at++] = key[keyAt + i]!;
    if (keyLength > last.length) {
      const grown = new Uint8Array(Math.max(keyLength, last.length * 2));
      grown.set(last.subarray(0, common));
      this.#last = last = grown;
    }
    for (let i = common; i < keyLength; i++) last[i] = key[keyAt + i]!;
    this.#lastLength = keyLength;
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
    if (typeof value === "string") {
      // Both strings in one scratch: the key, then the value.
      const both = scratchOf(key + value);
      this.addDataBytes(
        both,
        0,
        key.length,
        seq,
        expiry,
        both,
        key.length,
        value.length,
      );
    } else {
      const k = scratchOf(key);
      this.addDataBytes(
        k,
        0,
        key.length,
        seq,
        expiry,
        value ?? k,
        0,
        value === undefined ? -1 : value.length,
      );
    }
  }

  /**
   * Adds a data entry with key `key[keyAt, keyAt + keyLength)` and value
   * `value[valueAt, valueAt + valueLength)`; `valueLength` -1 is a
   * tombstone.
   */
  addDataBytes(
    key: Uint8Array,
    keyAt: number,
    keyLength: number,
    seq: number,
    expiry: number,
    value: Uint8Array,
    valueAt: number,
    valueLength: number,
  ): void {
    const kind = valueLength < 0 ? EntryTag.DELETE : EntryTag.PUT;
    const tag = expiry > 0 ? kind | EntryTag.HAS_EXPIRY : kind;
    const fieldLength = 1 + 8 + (expiry > 0 ? 8 : 0) + Math.max(0, valueLength);
    let at = this.#startEntry(key, keyAt, keyLength, fieldLength);
    const buf = this.#buf;
    buf[at++] = tag;
    putFixed64(buf, at, seq);
    at += 8;
    if (expiry > 0) {
      putFixed64(buf, at, expiry);
      at += 8;
    }
    if (valueLength > 0) {
      at = copyInto(buf, at, value, valueAt, valueAt + valueLength);
    }
    this.#length = at;
  }

  /** Adds an index entry: a block handle. */
  addHandle(key: string, offset: number, size: number): void {
    this.addHandleBytes(scratchOf(key), key.length, offset, size);
  }

  /** Adds an index entry whose key is `key[0, keyLength)`. */
  addHandleBytes(
    key: Uint8Array,
    keyLength: number,
    offset: number,
    size: number,
  ): void {
    let at = this.#startEntry(key, 0, keyLength, 12);
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

  /**
   * Empties the builder for the next block. The last key is kept: keys
   * added after a reset must still sort after it.
   */
  reset(): void {
    this.#length = 0;
    this.#restarts = [0];
    this.#sinceRestart = 0;
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
export function entriesEnd(
  contents: Uint8Array,
  bad: (why: string) => Error,
): number {
  if (contents.length < 4) throw bad("too short for a restart count");
  const n = getFixed32(contents, contents.length - 4);
  if (n < 1 || n > (contents.length - 4) / 4) {
    throw bad("restart count out of range");
  }
  return contents.length - 4 - n * 4;
}

/** The entry header last read by {@linkcode readHeader}. */
export const header = { shared: 0, unshared: 0, valueLength: 0, body: 0 };

/**
 * Reads the entry header at `at` into `header`, checking that the key
 * suffix and value fit before `limit`.
 */
export function readHeader(
  contents: Uint8Array,
  at: number,
  limit: number,
  bad: (why: string) => Error,
): void {
  // Nearly every header is three one-byte varints (keys and values under
  // 128 bytes, or prefixes under 128 bytes and a longer value): read those
  // bytes directly, and the value's length through getVarint32 only when
  // it takes more than one byte.
  if (at + 2 < limit && (contents[at]! | contents[at + 1]!) < 0x80) {
    header.shared = contents[at]!;
    header.unshared = contents[at + 1]!;
    const v = contents[at + 2]!;
    if (v < 0x80) {
      header.valueLength = v;
      header.body = at + 3;
    } else {
      if (!getVarint32(contents, at + 2, limit, scratch)) {
        throw bad("bad entry header");
      }
      header.valueLength = scratch.value;
      header.body = scratch.offset;
    }
  } else {
    readHeaderSlowly(contents, at, limit, bad);
  }
  const left = limit - header.body;
  if (header.unshared > left || header.valueLength > left - header.unshared) {
    throw bad("entry runs past the block");
  }
}

/** readHeader's general case: any varint takes more than one byte. */
function readHeaderSlowly(
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
export function blockError(
  file: string,
  offset: number,
): (why: string) => Error {
  return (why) =>
    new CorruptionError(
      `Corrupt block in table "${file}" at offset ${offset}: ${why}`,
      file,
      offset,
    );
}

/** The error for a bad entry in the block at `offset` of `file`. */
export function entryError(
  file: string,
  offset: number,
): (why: string) => Error {
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

/** A data entry's value field, parsed in place (no view made). */
export interface DataField {
  seq: number;
  expiry: number;
  /** Where the value starts in the contents. */
  valueAt: number;
  /** The value's length; -1 for a tombstone. */
  valueLength: number;
}

/** Parses a data entry's value field `contents[start, end)` into `out`. */
export function parseFieldInto(
  contents: Uint8Array,
  start: number,
  end: number,
  bad: (why: string) => Error,
  out: DataField,
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
  out.expiry = expiry;
  out.valueAt = at;
  out.valueLength = kind === EntryTag.PUT ? end - at : -1;
}

/** Result slot of parseValueInto's field parse, and of searchDataBlock's. */
const field: DataField = { seq: 0, expiry: 0, valueAt: 0, valueLength: -1 };

/** Parses a data entry's value field into `out`, the value as a view. */
function parseValueInto(
  contents: Uint8Array,
  start: number,
  end: number,
  bad: (why: string) => Error,
  out: DataValue,
): void {
  const f = field;
  parseFieldInto(contents, start, end, bad, f);
  out.seq = f.seq;
  out.value = f.valueLength < 0
    ? undefined
    : contents.subarray(f.valueAt, f.valueAt + f.valueLength);
  out.expiry = f.expiry;
}

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
 * The block {@linkcode searchDataBlock} is reading, for its errors: one
 * slot and two error factories serve every search (a search runs to the
 * end before another starts), where a factory per search cost an
 * allocation per point lookup.
 */
const searched = { file: "", offset: 0 };
const searchBad = (why: string) =>
  blockError(searched.file, searched.offset)(why);
const searchEntryBad = (why: string) =>
  entryError(searched.file, searched.offset)(why);

/**
 * Finds `key` in verified data block contents without decoding the block:
 * a binary search over the restart points, then a scan of at most one
 * restart interval. Returns the entry's fields, or undefined when absent.
 * Throws CorruptionError on any bad length. It trusts the block's key
 * order, which the writer asserts and the block checksum protects: unlike
 * a cursor or a decode, it does not check it (a block out of order could
 * answer "absent" for a key it holds).
 */
export function searchDataBlock(
  contents: Uint8Array,
  key: string,
  file: string,
  offset: number,
): DataValue | undefined {
  return findInDataBlock(contents, key, file, offset, field)
    ? entryOf(contents, field)
    : undefined;
}

/** The entry whose fields `f` holds, its value a view into `contents`. */
export function entryOf(contents: Uint8Array, f: DataField): DataValue {
  return {
    seq: f.seq,
    value: f.valueLength < 0
      ? undefined
      : contents.subarray(f.valueAt, f.valueAt + f.valueLength),
    expiry: f.expiry,
  };
}

/**
 * {@linkcode searchDataBlock} that allocates nothing: true when `key` is
 * in the block, its entry's fields then in `out` (the value where it lies
 * in `contents`). A point lookup copies the value straight from the block:
 * an entry object and a view per hit were a tenth of a cached get's time,
 * collections included.
 */
export function findInDataBlock(
  contents: Uint8Array,
  key: string,
  file: string,
  offset: number,
  out: DataField,
): boolean {
  searched.file = file;
  searched.offset = offset;
  const bad = searchBad;
  const limit = entriesEnd(contents, bad);
  let at = scanStart(contents, limit, key, true, bad);
  // No key is rebuilt: each entry sorts before `key` (every one scanned
  // past does), and `matched` is the length of the prefix the last one
  // shares with `key`. An entry sharing more than that with the last one
  // sorts before `key` too, unread; any other agrees with `key` on the bytes
  // it shares, and its own bytes decide.
  let matched = 0;
  let lastLength = -1;
  for (let i = 0; at < limit && i <= BLOCK_RESTART_INTERVAL * 2; i++) {
    readHeader(contents, at, limit, bad);
    const { shared, unshared, valueLength, body } = header;
    if (lastLength < 0 ? shared !== 0 : shared > lastLength) {
      throw bad(
        lastLength < 0
          ? "restart entry with a shared prefix"
          : "shared prefix longer than the last key",
      );
    }
    if (shared <= matched) {
      const rest = key.length - shared;
      const n = Math.min(rest, unshared);
      let j = 0;
      while (j < n && key.charCodeAt(shared + j) === contents[body + j]) j++;
      if (
        j < n
          ? key.charCodeAt(shared + j) < contents[body + j]!
          : rest < unshared
      ) {
        return false;
      }
      if (j === n && rest === unshared) {
        const valueStart = body + unshared;
        parseFieldInto(
          contents,
          valueStart,
          valueStart + valueLength,
          searchEntryBad,
          out,
        );
        return true;
      }
      matched = shared + j;
    }
    lastLength = shared + unshared;
    at = body + unshared + valueLength;
  }
  return false;
}

const NO_BYTES = new Uint8Array(0);

/** Bytes of a cursor's first key buffer (it grows for longer keys). */
export const KEY_BUFFER_BYTES = 64;

/**
 * An entry as bytes, the current one of a cursor: its key in the cursor's
 * own buffer, its value where it lies (in a block, a memtable's arena or
 * a view). What merges compare and copy from, with no string or view made
 * per entry.
 */
export class ByteEntry {
  /** The current key is `key[0, keyLength)`. */
  key: Uint8Array = bufferPool.alloc(KEY_BUFFER_BYTES);
  /** -1 before the first entry. */
  keyLength = -1;
  /** The bytes holding the value (a block's contents, for a ByteCursor). */
  block: Uint8Array = NO_BYTES;
  /**
   * `block` as words, when every value in it starts 4-byte aligned (a
   * memtable's arena): a copy of a value then goes a word at a time.
   */
  blockWords: Int32Array | undefined = undefined;
  seq = 0;
  expiry = 0;
  /** The value is `block[valueAt, valueAt + valueLength)`. */
  valueAt = 0;
  /** -1 for a tombstone. */
  valueLength = -1;
  /**
   * A scan's copy of `block` from some value's offset to its end (values
   * further on are taken later: a ByteCursor moves forward); dropped when
   * the cursor enters another block. The value at `at` of `block` is at
   * `blockCopyBase + at` of `blockCopyBuffer`, the copy's buffer (kept, so
   * that a view of it reads neither `.buffer` nor `.byteOffset`).
   */
  blockCopy: Uint8Array | undefined = undefined;
  blockCopyBuffer: ArrayBufferLike = NO_BYTES.buffer;
  blockCopyBase = 0;
  /**
   * Values a scan has taken from `block` so far; -1 unless `block` is a
   * table block read in place, whose bytes stay as they are while the
   * cursor is in it (a ByteCursor's), which a scan may copy whole.
   */
  blockUses = -1;

  /** Done early: lets go of what the cursor holds. */
  close(): void {}

  /** Makes binary string `key` the current key. */
  protected setKey(key: string): void {
    const n = key.length;
    if (n > this.key.length) this.key = bufferPool.alloc(2 * n);
    const out = this.key;
    for (let i = 0; i < n; i++) out[i] = key.charCodeAt(i);
    this.keyLength = n;
  }

  /** Makes `value` (undefined: a tombstone) the current value. */
  protected setValue(value: Uint8Array | undefined): void {
    if (value === undefined) {
      this.valueLength = -1;
    } else {
      this.block = value;
      this.blockWords = undefined;
      this.valueAt = 0;
      this.valueLength = value.length;
    }
  }
}

/**
 * A forward cursor over the entries of a sequence of verified data blocks
 * (a merge's input: every block of a run of tables, in order) that makes no
 * string and no view: the current key is kept as bytes in the cursor's own
 * buffer (`key[0, keyLength)`), the value as a position in the current
 * block. Keys must strictly increase across the blocks too. Damage is a
 * CorruptionError, as in a decode.
 */
export class ByteCursor extends ByteEntry {
  #limit = 0;
  /** Where the next entry starts (the current one's field ends). */
  #at = 0;
  /** Where the current entry's value field starts. */
  #fieldAt = 0;
  /** Whether the current block has had an entry yet (else shared is 0). */
  #inBlock = false;
  /** The current block's file and offset, for errors. */
  #file = "";
  #offset = 0;
  /**
   * Its errors, made once per cursor (not per block entered: a scan
   * enters several).
   */
  readonly #bad = (why: string): Error =>
    blockError(this.#file, this.#offset)(why);
  readonly #badEntry = (why: string): Error =>
    entryError(this.#file, this.#offset)(why);
  readonly #field: DataField = {
    seq: 0,
    expiry: 0,
    valueAt: 0,
    valueLength: -1,
  };

  /** Moves to the start of `contents`, the block at `offset` of `file`. */
  enter(contents: Uint8Array, file: string, offset: number): void {
    this.#file = file;
    this.#offset = offset;
    this.#limit = entriesEnd(contents, this.#bad);
    this.block = contents;
    this.blockCopy = undefined;
    this.blockUses = 0;
    this.#at = 0;
    this.#inBlock = false;
  }

  /**
   * Moves to the first entry of the current block (just entered) with a
   * key >= binary string `target`; false when none. Scans from the last
   * restart below the target, checking the entries it passes over as
   * next() does as far as their keys (their value fields are not read).
   */
  seek(target: string): boolean {
    this.#at = scanStart(this.block, this.#limit, target, false, this.#bad);
    this.#inBlock = false;
    this.keyLength = -1;
    while (this.#nextKey()) {
      if (compareKeyBytes(target, this.key, 0, this.keyLength) <= 0) {
        this.#readField();
        return true;
      }
    }
    return false;
  }

  /** Moves to the block's next entry; false at its end. */
  next(): boolean {
    if (!this.#nextKey()) return false;
    this.#readField();
    return true;
  }

  /**
   * Moves to the block's next entry as far as its key (rebuilt in `key`,
   * its order checked); its value field is read by {@linkcode #readField}.
   * False at the block's end.
   */
  #nextKey(): boolean {
    const contents = this.block;
    const limit = this.#limit;
    let at = this.#at;
    if (at >= limit) return false;
    let shared = contents[at]!;
    let unshared = contents[at + 1]!;
    let fieldLength = contents[at + 2]!;
    if ((shared | unshared | fieldLength) < 0x80 && at + 3 <= limit) {
      at += 3;
      if (unshared + fieldLength > limit - at) {
        throw this.#bad("entry runs past the block");
      }
    } else {
      readHeader(contents, at, limit, this.#bad);
      ({ shared, unshared, valueLength: fieldLength } = header);
      at = header.body;
    }
    const last = this.keyLength;
    if (shared > (this.#inBlock ? last : 0)) {
      throw this.#bad("shared prefix longer than the last key");
    }
    const n = shared + unshared;
    let key = this.key;
    if (n > key.length) {
      const grown = bufferPool.alloc(Math.max(n, key.length * 2));
      copyInto(grown, 0, key, 0, Math.max(0, last));
      this.key = key = grown;
    }
    // The first new byte that differs from the last key decides the order
    // (the shared prefix is the last key's); none differing, the longer key
    // is greater.
    let order = 0;
    for (let j = 0; j < unshared; j++) {
      const b = contents[at + j]!;
      if (order === 0 && shared + j < last) {
        const was = key[shared + j]!;
        if (b !== was) order = b > was ? 1 : -1;
      }
      key[shared + j] = b;
    }
    if (order === 0) order = n > last ? 1 : -1;
    if (last >= 0 && order < 0) throw this.#bad("keys out of order");
    this.keyLength = n;
    at += unshared;
    this.#fieldAt = at;
    this.#at = at + fieldLength;
    this.#inBlock = true;
    return true;
  }

  /** Reads the current entry's value field (see {@linkcode #nextKey}). */
  #readField(): void {
    const f = this.#field;
    parseFieldInto(this.block, this.#fieldAt, this.#at, this.#badEntry, f);
    this.seq = f.seq;
    this.expiry = f.expiry;
    this.valueAt = f.valueAt;
    this.valueLength = f.valueLength;
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
