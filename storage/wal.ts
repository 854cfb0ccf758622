/**
 * Write-ahead log records: encoding, decoding and reading a segment back.
 * The format is specified in docs/format/wal.md; constants in format.ts.
 *
 * Invariants:
 * - A record is returned by the reader only after its checksum verified.
 * - A length field is checked against WAL_RECORD_BYTES_MAX and the bytes
 *   left in the file before anything is allocated from it.
 */
import {
  assert,
  bytesToBinary,
  crc32,
  crc32c,
  crc32cExtendZeros,
  crc32ExtendZeros,
  getFixed32,
  getFixed64,
  getVarint32,
  maskCrc,
  putBinary,
  putFixed32,
  putFixed64,
  putVarint32,
  unmaskCrc,
  varint32Length,
  type VarintResult,
} from "../util/mod.ts";
import {
  BatchOpKind,
  WAL_HEADER_BYTES,
  WAL_PAYLOAD_PREFIX_BYTES,
  WAL_TYPE_CRC32,
  WalRecordType,
} from "./format.ts";
import {
  damageSearchBudget,
  WAL_READ_CHUNK_BYTES,
  WAL_RECORD_BYTES_MAX,
  WAL_TEAR_BLOCK_BYTES,
} from "./limits.ts";
import type { ReadableFile } from "./env.ts";
import { valuePool } from "./input.ts";

/** One write: a put (value set) or a delete (value undefined). */
export interface WalOp {
  kind: typeof BatchOpKind.PUT | typeof BatchOpKind.DELETE;
  /** The key as a binary string (one char per byte). */
  key: string;
  /**
   * The value, bytes the op owns (no one changes them); undefined for a
   * delete.
   */
  value: Uint8Array | undefined;
  /** Expiry in ms since the epoch; 0 means none. Puts only. */
  expiry: number;
}

/** A decoded record: ops take sequence numbers seq, seq + 1, ... */
export interface WalRecord {
  seq: number;
  timestamp: number;
  ops: WalOp[];
}

/** Encoded size of one op's body (after the kind byte, if any). */
function opBodyBytes(op: WalOp): number {
  const keyBytes = varint32Length(op.key.length) + op.key.length;
  if (op.kind === BatchOpKind.DELETE) return keyBytes;
  const v = op.value!;
  return 8 + keyBytes + varint32Length(v.length) + v.length;
}

/** Bytes the framed record for `ops` will occupy in the log. */
export function encodedRecordBytes(ops: readonly WalOp[]): number {
  let n = WAL_HEADER_BYTES + WAL_PAYLOAD_PREFIX_BYTES;
  if (ops.length === 1) return n + opBodyBytes(ops[0]!);
  n += varint32Length(ops.length);
  for (const op of ops) n += 1 + opBodyBytes(op);
  return n;
}

function putOpBody(buf: Uint8Array, at: number, op: WalOp): number {
  if (op.kind === BatchOpKind.PUT) {
    putFixed64(buf, at, op.expiry);
    at += 8;
  }
  at = putVarint32(buf, at, op.key.length);
  at = putBinary(buf, at, op.key);
  if (op.kind === BatchOpKind.PUT) {
    const v = op.value!;
    at = putVarint32(buf, at, v.length);
    buf.set(v, at);
    at += v.length;
  }
  return at;
}

/**
 * Encodes one framed record holding `ops` at `buf[at]`; returns the end.
 * One op is written as a PUT or DELETE record, several as one BATCH record.
 * REQUIRES: room for encodedRecordBytes(ops) bytes; ops.length >= 1.
 */
export function encodeRecord(
  buf: Uint8Array,
  at: number,
  seq: number,
  timestamp: number,
  ops: readonly WalOp[],
): number {
  assert(ops.length >= 1, "encodeRecord needs at least one op");
  const start = at;
  let p = at + WAL_HEADER_BYTES;
  putFixed64(buf, p, seq);
  putFixed64(buf, p + 8, timestamp);
  p += WAL_PAYLOAD_PREFIX_BYTES;
  let type: number;
  if (ops.length === 1) {
    const op = ops[0]!;
    type = op.kind === BatchOpKind.PUT
      ? WalRecordType.PUT
      : WalRecordType.DELETE;
    p = putOpBody(buf, p, op);
  } else {
    type = WalRecordType.BATCH;
    p = putVarint32(buf, p, ops.length);
    for (const op of ops) {
      buf[p++] = op.kind;
      p = putOpBody(buf, p, op);
    }
  }
  const payloadBytes = p - start - WAL_HEADER_BYTES;
  putFixed32(buf, start + 4, payloadBytes);
  buf[start + 8] = type | WAL_TYPE_CRC32;
  putFixed32(buf, start, maskCrc(crc32(buf, start + 4, p)));
  return p;
}

/**
 * The reason a segment's records end at zeros: the space preallocated past
 * the last record, which any stop short of a clean close leaves.
 */
export const ZERO_FILLED = "zero-filled space";

const scratch: VarintResult = { value: 0, offset: 0 };

/**
 * Decodes one op body at `at` (PUT or DELETE layout); returns the op and
 * leaves the end offset in `scratch.offset`, or returns a reason string.
 */
function decodeOpBody(
  kind: number,
  buf: Uint8Array,
  at: number,
  end: number,
): WalOp | string {
  let expiry = 0;
  if (kind === BatchOpKind.PUT) {
    if (end - at < 8) return "truncated expiry";
    expiry = getFixed64(buf, at);
    if (expiry < 0) return "expiry out of range";
    at += 8;
  }
  if (!getVarint32(buf, at, end, scratch)) return "bad key length";
  const keyLength = scratch.value;
  at = scratch.offset;
  if (keyLength > end - at) return "key runs past the record";
  const key = bytesToBinary(buf, at, at + keyLength);
  at += keyLength;
  if (kind === BatchOpKind.DELETE) {
    scratch.offset = at;
    return { kind: BatchOpKind.DELETE, key, value: undefined, expiry: 0 };
  }
  if (!getVarint32(buf, at, end, scratch)) return "bad value length";
  const valueLength = scratch.value;
  at = scratch.offset;
  if (valueLength > end - at) return "value runs past the record";
  // A copy: the reader reuses its buffer, and the memtable keeps the value.
  const value = valuePool.copy(buf, at, at + valueLength);
  scratch.offset = at + valueLength;
  return { kind: BatchOpKind.PUT, key, value, expiry };
}

/**
 * Decodes a verified payload of the given record type. Returns the record,
 * or a reason string when the payload does not follow the format (which,
 * behind a good checksum, means a bug or a deliberate edit).
 */
export function decodePayload(
  type: number,
  payload: Uint8Array,
): WalRecord | string {
  const end = payload.length;
  if (end < WAL_PAYLOAD_PREFIX_BYTES) return "payload shorter than its prefix";
  const seq = getFixed64(payload, 0);
  const timestamp = getFixed64(payload, 8);
  if (seq < 1) return "sequence number out of range";
  if (timestamp < 0) return "timestamp out of range";
  let at = WAL_PAYLOAD_PREFIX_BYTES;
  const ops: WalOp[] = [];
  if (type === WalRecordType.PUT || type === WalRecordType.DELETE) {
    const kind = type === WalRecordType.PUT
      ? BatchOpKind.PUT
      : BatchOpKind.DELETE;
    const op = decodeOpBody(kind, payload, at, end);
    if (typeof op === "string") return op;
    ops.push(op);
    at = scratch.offset;
  } else if (type === WalRecordType.BATCH) {
    if (!getVarint32(payload, at, end, scratch)) return "bad batch count";
    const count = scratch.value;
    at = scratch.offset;
    // Each op takes at least 2 bytes, so a count above that is damage.
    if (count < 2 || count > (end - at) / 2) return "batch count out of range";
    for (let i = 0; i < count; i++) {
      const kind = payload[at++]!;
      if (kind !== BatchOpKind.PUT && kind !== BatchOpKind.DELETE) {
        return `unknown batch op kind ${kind}`;
      }
      const op = decodeOpBody(kind, payload, at, end);
      if (typeof op === "string") return op;
      ops.push(op);
      at = scratch.offset;
    }
  } else {
    return `unknown record type ${type}`;
  }
  if (at !== end) return "trailing bytes after the last op";
  if (seq + ops.length - 1 > Number.MAX_SAFE_INTEGER) {
    return "sequence number out of range";
  }
  return { seq, timestamp, ops };
}

/** What {@linkcode SegmentReader.next} found. */
export type ReadResult =
  | {
    kind: "record";
    /** Offset of the record's header in the segment. */
    offset: number;
    /** Offset just past the record. */
    end: number;
    type: number;
    /** Verified payload; valid until the next call to next(). */
    payload: Uint8Array;
  }
  | { kind: "end"; offset: number }
  | {
    kind: "damaged";
    /** Offset of the first byte that is not part of a valid record. */
    offset: number;
    reason: string;
  };

/** Checks a header at `at`: a plausible record type and length. */
function plausibleHeader(
  buf: Uint8Array,
  at: number,
  bytesLeft: number,
): number {
  const length = getFixed32(buf, at + 4);
  const type = buf[at + 8]! & ~WAL_TYPE_CRC32;
  if (type < WalRecordType.PUT || type > WalRecordType.BATCH) return -1;
  if (length < WAL_PAYLOAD_PREFIX_BYTES || length > WAL_RECORD_BYTES_MAX) {
    return -1;
  }
  if (length > bytesLeft - WAL_HEADER_BYTES) return -1;
  return length;
}

/**
 * Whether the record framed in `buf[s, end)`, followed by `zeros` zero
 * bytes that are not in `buf`, has the checksum its header names: CRC-32
 * when its type byte has `WAL_TYPE_CRC32`, else CRC-32C.
 */
function checksumMatches(
  buf: Uint8Array,
  s: number,
  end: number,
  zeros = 0,
): boolean {
  const expected = unmaskCrc(getFixed32(buf, s));
  const actual = buf[s + 8]! & WAL_TYPE_CRC32
    ? crc32ExtendZeros(crc32(buf, s + 4, end), zeros)
    : crc32cExtendZeros(crc32c(buf, s + 4, end), zeros);
  return actual === expected;
}

/**
 * Reads the records of one WAL segment in order, through a bounded buffer.
 * Stops at the first byte that does not begin a valid record.
 */
export class SegmentReader {
  #buf = new Uint8Array(WAL_READ_CHUNK_BYTES);
  /** File offset of #buf[0]. */
  #bufStart = 0;
  #bufLength = 0;
  #offset = 0;

  constructor(readonly file: ReadableFile) {}

  /** Whether file bytes [at, at + n) are in #buf. */
  #has(at: number, n: number): boolean {
    return at >= this.#bufStart && at + n <= this.#bufStart + this.#bufLength;
  }

  /** Makes file bytes [at, at + n) available in #buf; false past EOF. */
  async #ensure(at: number, n: number): Promise<boolean> {
    if (at + n > this.file.size) return false;
    if (this.#has(at, n)) return true;
    if (n > this.#buf.length) {
      let size = this.#buf.length;
      while (size < n) size *= 2;
      this.#buf = new Uint8Array(size);
    }
    const want = Math.min(this.#buf.length, this.file.size - at);
    const got = await this.file.read(at, this.#buf.subarray(0, want));
    this.#bufStart = at;
    this.#bufLength = got;
    return got >= n;
  }

  /** Reads the record at the current offset and moves past it. */
  async next(): Promise<ReadResult> {
    const at = this.#offset;
    const left = this.file.size - at;
    if (left === 0) return { kind: "end", offset: at };
    if (!(await this.#ensure(at, Math.min(left, WAL_HEADER_BYTES)))) {
      return { kind: "damaged", offset: at, reason: "short read" };
    }
    if (left < WAL_HEADER_BYTES) {
      return { kind: "damaged", offset: at, reason: "partial record header" };
    }
    const h = at - this.#bufStart;
    const buf = this.#buf;
    const type = buf[h + 8]!;
    const rawLength = getFixed32(buf, h + 4);
    if (
      type === WalRecordType.ZERO && rawLength === 0 && getFixed32(buf, h) === 0
    ) {
      return { kind: "damaged", offset: at, reason: ZERO_FILLED };
    }
    const length = plausibleHeader(buf, h, left);
    if (length < 0) {
      const reason = rawLength > left - WAL_HEADER_BYTES
        ? "record runs past the end of the file"
        : "bad record header";
      return { kind: "damaged", offset: at, reason };
    }
    if (!(await this.#ensure(at, WAL_HEADER_BYTES + length))) {
      return { kind: "damaged", offset: at, reason: "short read" };
    }
    const s = at - this.#bufStart;
    const end = s + WAL_HEADER_BYTES + length;
    if (!checksumMatches(this.#buf, s, end)) {
      return { kind: "damaged", offset: at, reason: "checksum mismatch" };
    }
    this.#offset = at + WAL_HEADER_BYTES + length;
    return {
      kind: "record",
      offset: at,
      end: this.#offset,
      type: type & ~WAL_TYPE_CRC32,
      payload: this.#buf.subarray(s + WAL_HEADER_BYTES, end),
    };
  }

  /**
   * Where the run of zero bytes that ends the file starts (the file's size
   * when it ends in another byte; `from` when all after it are zeros).
   */
  async #zerosFrom(from: number): Promise<number> {
    for (let end = this.file.size; end > from;) {
      const start = Math.max(from, end - WAL_READ_CHUNK_BYTES);
      if (!(await this.#ensure(start, end - start))) return this.file.size;
      const buf = this.#buf;
      const base = start - this.#bufStart;
      for (let i = end - start - 1; i >= 0; i--) {
        if (buf[base + i] !== 0) return start + i + 1;
      }
      end = start;
    }
    return from;
  }

  /**
   * Whether damage at `offset` (in the last segment) is followed by a valid
   * record that shows it is not a torn write: that record's offset; -1 when
   * the search could not decide (see validRecordAfter); undefined when no
   * such record follows.
   *
   * In a file of preallocated space (its size a whole number of
   * WAL_TEAR_BLOCK_BYTES blocks, nothing but zeros after the damage's
   * block), a valid record that lies wholly inside the damage's block does
   * not count: a power cut during the fsync of a write into that space can
   * keep any of the block's sectors and not others. (Appended at the end,
   * the file's size hid such a tear: it covered the new bytes only once
   * they were durable. In preallocated space the size is durable already.
   * The blocks after it were never written: a filesystem such as ext4
   * shows them, zeros until then, only once all the write's data is
   * durable.) Only records of the unacknowledged write can lie there after
   * the damage, unless the damage is a bad sector among acknowledged
   * records: that is read as a torn write too, as damage to the very last
   * record always was. A record running past the block counts: its bytes
   * there are zeros, the end of a value, as in a file a clean close cut at
   * its last record.
   */
  async recordAfterDamage(offset: number): Promise<number | undefined> {
    const size = this.file.size;
    const blockEnd = (Math.floor(offset / WAL_TEAR_BLOCK_BYTES) + 1) *
      WAL_TEAR_BLOCK_BYTES;
    const preallocated = size % WAL_TEAR_BLOCK_BYTES === 0 &&
      blockEnd < size && await this.#zerosFrom(blockEnd) === blockEnd;
    return await this.validRecordAfter(
      offset + 1,
      preallocated ? blockEnd : 0,
    );
  }

  /**
   * Whether any valid record starts at or after `from`. Used after damage:
   * a valid record past it means the damage is not a torn tail. Returns its
   * offset; or -1 when the search ran out of its checksum budget
   * (damageSearchBudget) without deciding, which callers treat as found.
   * A record that ends at or before `countFrom` is passed over.
   *
   * The zeros that end the file (a crash leaves the active segment's
   * preallocated space) cost nothing: no record starts in them (its type
   * byte would be 0), and a candidate running into them is checksummed
   * over its other bytes, then extended over the zeros arithmetically.
   * Checksummed byte by byte, a megabyte of them after each record-like
   * header of binary values (a little-endian count, then a PUT) spent the
   * whole budget on a torn, never-acknowledged write, and open refused.
   */
  async validRecordAfter(
    from: number,
    countFrom = 0,
  ): Promise<number | undefined> {
    const size = this.file.size;
    const zerosFrom = await this.#zerosFrom(from);
    let budget = damageSearchBudget(zerosFrom - from);
    // A record's type byte, at offset 8, is not zero.
    const lastStart = Math.min(size, zerosFrom) - WAL_HEADER_BYTES;
    for (let at = from; at <= lastStart;) {
      const window = Math.min(WAL_READ_CHUNK_BYTES, size - at);
      if (!(await this.#ensure(at, window))) return undefined;
      const last = Math.min(window, lastStart - at + 1);
      for (let i = 0; i < last; i++) {
        const p = at + i;
        // (Awaited only to read more: an await per byte made a search of
        // a crash's megabyte of preallocated zeros take some 80 ms.)
        if (
          !this.#has(p, WAL_HEADER_BYTES) &&
          !(await this.#ensure(p, WAL_HEADER_BYTES))
        ) return undefined;
        const h = p - this.#bufStart;
        if (this.#buf[h + 8] === 0) continue; // no record type: fast
        const length = plausibleHeader(this.#buf, h, size - p);
        if (length < 0) continue;
        const end = p + WAL_HEADER_BYTES + length;
        if (end <= countFrom) continue;
        const real = Math.min(end, zerosFrom);
        budget -= real - p;
        if (budget < 0) return -1;
        if (!(await this.#ensure(p, real - p))) continue;
        const s = p - this.#bufStart;
        if (checksumMatches(this.#buf, s, s + real - p, end - real)) return p;
      }
      at += last;
    }
    return undefined;
  }
}
