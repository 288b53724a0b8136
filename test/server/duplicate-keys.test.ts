// Duplicate keys in a request body (src/server/duplicate-keys.ts): found wherever they are, as the
// strings they decode to, and nowhere else; app.ts refuses such a body.
import test from "ava";
import { duplicateKeyPath } from "../../src/server/duplicate-keys.js";

test("a key given twice is found, with its path, at any depth and through escapes", (t) => {
  t.is(duplicateKeyPath('{"a":1,"a":2}'), "a");
  t.is(duplicateKeyPath('{"key_id":"k","encryption_context":{"x":"1","y":"2","x":"3"}}'), "encryption_context/x");
  t.is(duplicateKeyPath('{"encryption_context":{"a":"1","\\u0061":"2"}}'), "encryption_context/a", "the same key, escaped");
  t.is(duplicateKeyPath('{"tags":[{"key":"k","value":"v"},{"key":"k","key":"j"}]}'), "tags/*/key");
  t.is(duplicateKeyPath('{"o":{"p":{"q":1,"q":2}}}'), "o/p/q");
});

test("keys repeated in different objects, in values or in strings with quotes and backslashes are no duplicates", (t) => {
  for (const text of [
    "{}", "[]", '"a"', "1", "null",
    '{"a":{"a":{"a":1}}}',
    '{"a":"a","b":"a"}',
    '{"tags":[{"key":"k"},{"key":"k"}]}',
    '{"a":"x\\"a\\":1","b":2}',
    '{"a\\\\":1,"a":2}',
    '{"a":[1,{"b":2},"c"],"b":{"a":[]}}',
    JSON.stringify({ encryption_context: Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k${i}`, `"v\\${i}`])) }),
  ]) {
    t.is(duplicateKeyPath(text), undefined, text.slice(0, 60));
  }
});
