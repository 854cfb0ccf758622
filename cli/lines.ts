/**
 * Splits a byte stream into text lines ("\\n" or "\\r\\n"), with a bound on
 * line length so a runaway input cannot exhaust memory, and without
 * changing a byte: a line that is not valid UTF-8 is refused, not repaired.
 */

/** Longest input line in bytes: a maximal key and value plus room for the command. */
export const LINE_BYTES_MAX = 17 * 1024 * 1024;

/**
 * A line that cannot be run, yielded in its place so that its position in
 * the output is kept: one too long, or not valid UTF-8.
 */
export class BadLine {
  constructor(readonly message: string) {}
}

const NEWLINE = 0x0a;
const CR = 0x0d;

/** Lines of a byte stream, as they come: text, or why a line is refused. */
export type Line = string | BadLine;

/**
 * Lines of a UTF-8 byte stream. A final line without a newline is yielded
 * too. A line longer than LINE_BYTES_MAX bytes is skipped to its end, and a
 * line that is not valid UTF-8 is not decoded (a lenient decoder would
 * replace its bad bytes with U+FFFD, and a PUT would store other bytes than
 * the input's); each yields a BadLine instead.
 */
export async function* readLines(
  stream: ReadableStream<Uint8Array>,
): AsyncGenerator<Line> {
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  /** Pieces of the line read so far, and their total length. */
  let pieces: Uint8Array[] = [];
  let pending = 0;
  let skipping = false;
  /** The first line: a byte order mark at its start is not a command's. */
  let first = true;
  const finish = (): Line => {
    const isFirst = first;
    first = false;
    if (skipping) {
      skipping = false;
      return new BadLine(
        `line longer than ${LINE_BYTES_MAX} bytes (LINE_BYTES_MAX); skipped`,
      );
    }
    let bytes: Uint8Array;
    if (pieces.length === 1) {
      bytes = pieces[0]!;
    } else {
      bytes = new Uint8Array(pending);
      let at = 0;
      for (const p of pieces) {
        bytes.set(p, at);
        at += p.length;
      }
    }
    pieces = [];
    pending = 0;
    if (bytes.length > 0 && bytes[bytes.length - 1] === CR) {
      bytes = bytes.subarray(0, bytes.length - 1);
    }
    if (
      isFirst && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf
    ) {
      // A UTF-8 byte order mark, as editors on Windows save one: the first
      // command failed as unknown, its name printed without the invisible
      // mark that made it so.
      bytes = bytes.subarray(3);
    }
    try {
      return decoder.decode(bytes);
    } catch {
      return new BadLine(
        "line is not valid UTF-8; nothing was run (keys may be written as " +
          '"\\xHH" escapes in double quotes)',
      );
    }
  };
  const take = (piece: Uint8Array) => {
    if (skipping) return;
    if (pending + piece.length > LINE_BYTES_MAX) {
      skipping = true;
      pieces = [];
      pending = 0;
      return;
    }
    // Copied: the stream may reuse its chunk's buffer.
    if (piece.length > 0) pieces.push(piece.slice());
    pending += piece.length;
  };
  for await (const chunk of stream) {
    let at = 0;
    for (;;) {
      const nl = chunk.indexOf(NEWLINE, at);
      if (nl < 0) break;
      take(chunk.subarray(at, nl));
      yield finish();
      at = nl + 1;
    }
    take(chunk.subarray(at));
  }
  if (skipping || pending > 0) yield finish();
}
