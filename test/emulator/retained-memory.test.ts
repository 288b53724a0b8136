// What outlives a call owns its memory or is a shared constant: attribute values and handles are not slices of Node's
// shared 8 KiB Buffer pool, whose every slice keeps the whole pool alive (a thousand cached keys
// held megabytes of pools that way, seen as the KMS benchmark's cold-cache memory).
import test from "ava";
import { encodeValue, retained, FALSE, TRUE } from "../../emulator/objects/attributes.js";
import { toHandle } from "../../emulator/handles.js";
import { pkcs11 as P } from "../../emulator/pkcs11.js";

const ownsItsMemory = (bytes: Buffer): boolean => bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.length;

test("attribute values and handles own their memory; shared constants stay shared", (t) => {
  const pooled = Buffer.from("abc"); // a slice of the pool
  t.false(ownsItsMemory(pooled));
  for (const [type, value] of [
    [P.CKA_LABEL, "a label"], [P.CKA_LABEL, pooled], [P.CKA_ID, Buffer.from([1, 2, 3])], [P.CKA_VALUE_LEN, 32], [P.CKA_VALUE_LEN, Buffer.alloc(8)],
    [P.CKA_START_DATE, "20261129"], [P.CKA_ALLOWED_MECHANISMS, [P.CKM_AES_GCM]], [P.CKA_SENSITIVE, Buffer.from([2])],
    [P.CKA_VALUE_LEN, 0x12345678],
  ] as const) {
    const encoded = encodeValue(type, value);
    t.true(ownsItsMemory(encoded), `attribute 0x${type.toString(16)}`);
  }
  t.is(encodeValue(P.CKA_SENSITIVE, true), TRUE);
  t.is(encodeValue(P.CKA_SENSITIVE, false), FALSE);
  t.is(encodeValue(P.CKA_SENSITIVE, Buffer.from([1])), TRUE);
  t.is(encodeValue(P.CKA_SENSITIVE, Buffer.from([0])), FALSE);
  // Small CK_ULONGs are one Buffer for every object (stored values are never written in place).
  const length = encodeValue(P.CKA_VALUE_LEN, 32);
  t.is(encodeValue(P.CKA_VALUE_LEN, 32), length);
  t.is(encodeValue(P.CKA_VALUE_LEN, Buffer.from([32, 0, 0, 0, 0, 0, 0, 0])), length);
  t.true(ownsItsMemory(length));
  t.is(length.readUInt32LE(0), 32);
  t.true(ownsItsMemory(toHandle(12345)));
  const copy = retained(pooled);
  t.true(ownsItsMemory(copy));
  t.deepEqual(copy, pooled);
  pooled[0] = 0x7a;
  t.is(copy.toString(), "abc", "a copy, not a view");
});
