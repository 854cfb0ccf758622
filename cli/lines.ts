/**
 * Splits a byte stream into text lines ("\\n" or "\\r\\n"), with a bound on
 * line length so a runaway input cannot exhaust memory.
 */

/** Longest input line: a maximal key and value plus room for the command. */
export const LINE_BYTES_MAX = 17 * 1024 * 1024;

/** Yielded in place of a line that exceeded LINE_BYTES_MAX. */
export const LINE_TOO_LONG = "\u0000line too long";

/**
 * Lines of a UTF-8 byte stream. A final line without a newline is yielded
 * too. A line longer than LINE_BYTES_MAX is skipped to its end and replaced
 * by LINE_TOO_LONG, so its position in the output is kept.
 */
export async function* readLines(
  stream: ReadableStream<Uint8Array>,
): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let pending = "";
  let skipping = false;
  for await (const chunk of stream) {
    let text = decoder.decode(chunk, { stream: true });
    for (;;) {
      const nl = text.indexOf("\n");
      if (nl < 0) break;
      const piece = text.slice(0, nl);
      text = text.slice(nl + 1);
      if (skipping) {
        skipping = false;
        pending = "";
        yield LINE_TOO_LONG;
        continue;
      }
      const line = pending + piece;
      pending = "";
      yield line.endsWith("\r") ? line.slice(0, -1) : line;
    }
    if (skipping) continue;
    pending += text;
    if (pending.length > LINE_BYTES_MAX) {
      skipping = true;
      pending = "";
    }
  }
  pending += decoder.decode();
  if (skipping) yield LINE_TOO_LONG;
  else if (pending.length > 0) yield pending;
}
