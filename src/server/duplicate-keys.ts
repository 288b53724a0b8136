/**
 * Duplicate keys in a JSON request body. JSON.parse keeps the last of them silently, where another
 * parser may keep the first: for an encryption context — bound into a ciphertext by one client and
 * presented again by another — the two could then mean different contexts, so such a body is
 * refused rather than read one way (docs/ciphertext-format.md §3). Keys are compared as the strings
 * they decode to ("a" and "\u0061" are the same key).
 */

interface Frame {
  /** An object's keys so far; null for an array. */
  keys: Set<string> | null;
  /** The path of the container's members, e.g. "encryption_context/" (an array adds a "*" segment). */
  path: string;
  /** In an object: the next string is a key. */
  expectingKey: boolean;
}

/**
 * The path ("encryption_context/a") of the first key that repeats within its object, or undefined.
 * `text` must be valid JSON (it is scanned after JSON.parse accepted it).
 */
export function duplicateKeyPath(text: string): string | undefined {
  const stack: Frame[] = [];
  let lastKey = "";
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit === 0x22 /* " */) {
      const end = stringEnd(text, i);
      const top = stack.at(-1);
      if (top?.keys != null && top.expectingKey) {
        const literal = text.slice(i, end + 1);
        const key = literal.includes("\\") ? (JSON.parse(literal) as string) : literal.slice(1, -1);
        if (top.keys.has(key)) return `${top.path}${key}`;
        top.keys.add(key);
        top.expectingKey = false;
        lastKey = key;
      }
      i = end;
    } else if (unit === 0x7b /* { */ || unit === 0x5b /* [ */) {
      const parent = stack.at(-1);
      const path = parent === undefined ? "" : parent.keys === null ? `${parent.path}*/` : `${parent.path}${lastKey}/`;
      stack.push({ keys: unit === 0x7b ? new Set() : null, path, expectingKey: unit === 0x7b });
    } else if (unit === 0x7d /* } */ || unit === 0x5d /* ] */) {
      stack.pop();
    } else if (unit === 0x2c /* , */) {
      const top = stack.at(-1);
      if (top?.keys != null) top.expectingKey = true;
    }
  }
  return undefined;
}

/** The index of the quote that closes the string opening at `start`. */
function stringEnd(text: string, start: number): number {
  let end = text.indexOf('"', start + 1);
  for (;;) {
    let backslashes = 0;
    while (text.charCodeAt(end - 1 - backslashes) === 0x5c /* \ */) backslashes++;
    if (backslashes % 2 === 0) return end;
    end = text.indexOf('"', end + 1);
  }
}
