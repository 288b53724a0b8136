// Wycheproof vectors (C2SP/wycheproof testvectors_v1, provenance in ../shared/vectors/wycheproof/
// SOURCE.md) through the emulator's PKCS#11 surface: keys made with C_CreateObject, AES-GCM with
// C_Encrypt/C_Decrypt, KW and KWP with C_WrapKey/C_UnwrapKey, HMAC-SHA256 with C_Sign/C_Verify.
import test from "ava";
import { createCipheriv } from "node:crypto";
import { CKM_AES_KEY_WRAP_KWP } from "../../emulator/extra-constants.js";
import type { Handle, Mechanism, Template } from "../../emulator/pkcs11.js";
import { loadAead, loadKeywrap, loadMac, type KeywrapVector } from "../vectors/wycheproof.js";
import { P, attr, ckr, openToken, secretKey, sign, throwsCkr, verify, type Token } from "./mechanisms-helpers.js";

test("AES-GCM (aes_gcm_test.json): C_Encrypt gives ct‖tag exactly, C_Decrypt the message; invalid vectors fail", (t) => {
  const token = openToken(t);
  const { p11, session } = token;
  const vectors = loadAead("aes_gcm_test.json");
  const counts = { valid: 0, invalid: 0, zeroIv: 0 };
  const keys = new Map<string, Handle>();
  for (const v of vectors) {
    const id = `tcId ${v.tcId}`;
    const keyHex = v.key.toString("hex");
    let key = keys.get(keyHex);
    if (key === undefined) {
      key = secretKey(token, v.key, P.CKK_AES);
      keys.set(keyHex, key);
    }
    const mechanism: Mechanism = {
      mechanism: P.CKM_AES_GCM,
      parameter: { type: P.CK_PARAMS_AES_GCM, iv: v.iv, aad: v.aad, ivBits: v.iv.length * 8, tagBits: v.tagSize } as never,
    };
    const sealed = Buffer.concat([v.ct, v.tag]);
    if (v.iv.length === 0) {
      // A zero-length IV is not a GCM parameter (SP 800-38D §5.2.1.1): refused at initialisation.
      throwsCkr(t, () => p11.C_EncryptInit(session, mechanism, key), P.CKR_MECHANISM_PARAM_INVALID, id);
      throwsCkr(t, () => p11.C_DecryptInit(session, mechanism, key), P.CKR_MECHANISM_PARAM_INVALID, id);
      counts.zeroIv++;
      continue;
    }
    if (v.result === "valid") {
      p11.C_EncryptInit(session, mechanism, key);
      t.deepEqual(Buffer.from(p11.C_Encrypt(session, v.msg, Buffer.alloc(v.msg.length + 16))), sealed, id);
      p11.C_DecryptInit(session, mechanism, key);
      t.deepEqual(Buffer.from(p11.C_Decrypt(session, sealed, Buffer.alloc(sealed.length))), v.msg, id);
      counts.valid++;
    } else {
      p11.C_DecryptInit(session, mechanism, key);
      t.is(ckr(t, () => p11.C_Decrypt(session, sealed, Buffer.alloc(sealed.length + 16))), P.CKR_ENCRYPTED_DATA_INVALID, `${id} ${v.comment}`);
      counts.invalid++;
    }
  }
  t.is(counts.valid + counts.invalid + counts.zeroIv, vectors.length);
  t.log(`AES-GCM: ${vectors.length} vectors — ${counts.valid} valid, ${counts.invalid} invalid, ${counts.zeroIv} zero-length IV`);
});

const UNWRAP_FAILURES = [P.CKR_WRAPPED_KEY_INVALID, P.CKR_WRAPPED_KEY_LEN_RANGE];

/** C_UnwrapKey to an extractable generic secret: its value, or the CKR code it failed with. */
function unwrap(token: Token, mechanism: Mechanism, kek: Handle, wrapped: Buffer): Buffer | number {
  const template: Template = [
    { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_GENERIC_SECRET },
    { type: P.CKA_EXTRACTABLE, value: true }, { type: P.CKA_SENSITIVE, value: false },
  ];
  try {
    const handle = token.p11.C_UnwrapKey(token.session, mechanism, kek, wrapped, template);
    const value = attr(token, handle, P.CKA_VALUE);
    token.p11.C_DestroyObject(token.session, handle);
    return value;
  } catch (error) {
    if (error instanceof P.Pkcs11Error) return error.code;
    throw error;
  }
}

/** C_WrapKey of a generic secret holding `msg`: the wrapped bytes, or the CKR code it failed with (also for a value no key can hold). */
function wrap(token: Token, mechanism: Mechanism, kek: Handle, msg: Buffer): Buffer | number {
  try {
    const key = secretKey(token, msg);
    const wrapped = Buffer.from(token.p11.C_WrapKey(token.session, mechanism, kek, key, Buffer.alloc(msg.length + 64)));
    token.p11.C_DestroyObject(token.session, key);
    return wrapped;
  } catch (error) {
    if (error instanceof P.Pkcs11Error) return error.code;
    throw error;
  }
}

/** KW of the message zero-padded to whole semiblocks (node:crypto), when that is long enough for KW. */
function zeroPaddedKw(v: KeywrapVector): Buffer | undefined {
  const message = Buffer.concat([v.msg, Buffer.alloc((8 - (v.msg.length % 8)) % 8)]);
  if (message.length < 16) return undefined;
  const cipher = createCipheriv(`id-aes${v.key.length * 8}-wrap`, v.key, Buffer.from("a6a6a6a6a6a6a6a6", "hex"));
  return Buffer.concat([cipher.update(message), cipher.final()]);
}

function keywrapVectors(file: string, mechanism: Mechanism, label: string): void {
  test(`${label} (${file}): C_WrapKey gives ct exactly, C_UnwrapKey the key; invalid vectors fail`, (t) => {
    const token = openToken(t);
    const vectors: KeywrapVector[] = loadKeywrap(file);
    const counts = { valid: 0, invalid: 0, acceptable: 0, zeroPadded: 0 };
    for (const v of vectors) {
      const id = `tcId ${v.tcId} ${v.comment} [${v.flags.join(",")}]`;
      const kek = secretKey(token, v.key, P.CKK_AES);
      if (v.result === "valid") {
        t.deepEqual(wrap(token, mechanism, kek, v.msg), v.ct, id);
        t.deepEqual(unwrap(token, mechanism, kek, v.ct), v.msg, id);
      } else if (v.result === "invalid") {
        // Either the wrapped bytes are corrupt (unwrap must fail), or there are none because the
        // message cannot be wrapped (wrap must fail).
        if (v.ct.length > 0 || v.msg.length === 0) {
          const result = unwrap(token, mechanism, kek, v.ct);
          t.true(typeof result === "number" && UNWRAP_FAILURES.includes(result), `${id}: ${typeof result === "number" ? result : "unwrapped"}`);
        } else {
          // RFC 3394 cannot wrap this message. PKCS#11 v2.40 §2.14.3 has CKM_AES_KEY_WRAP zero-pad
          // a key to a whole semiblock instead, so the token may also return KW(msg ‖ zeros).
          const wrapped = wrap(token, mechanism, kek, v.msg);
          const expected = zeroPaddedKw(v);
          t.true(typeof wrapped === "number" || (expected !== undefined && wrapped.equals(expected)), id);
          if (typeof wrapped !== "number") counts.zeroPadded++;
        }
      } else {
        // Acceptable: either outcome, but a success must be the right one.
        const wrapped = wrap(token, mechanism, kek, v.msg);
        t.true(typeof wrapped === "number" || wrapped.equals(v.ct), id);
        const unwrapped = unwrap(token, mechanism, kek, v.ct);
        t.true(typeof unwrapped === "number" ? UNWRAP_FAILURES.includes(unwrapped) : unwrapped.equals(v.msg), id);
      }
      counts[v.result]++;
      token.p11.C_DestroyObject(token.session, kek);
    }
    t.log(`${label}: ${vectors.length} vectors — ${counts.valid} valid, ${counts.invalid} invalid, ${counts.acceptable} acceptable` +
      (counts.zeroPadded > 0 ? ` (${counts.zeroPadded} of the invalid ones wrapped zero-padded, as PKCS#11 §2.14.3 says)` : ""));
  });
}

keywrapVectors("aes_wrap_test.json", { mechanism: P.CKM_AES_KEY_WRAP }, "AES-KW (RFC 3394)");
keywrapVectors("aes_kwp_test.json", { mechanism: CKM_AES_KEY_WRAP_KWP }, "AES-KWP (RFC 5649)");

test("HMAC-SHA256 (hmac_sha256_test.json): C_Sign gives the tag, C_Verify accepts it; modified tags are CKR_SIGNATURE_INVALID", (t) => {
  const token = openToken(t);
  const vectors = loadMac("hmac_sha256_test.json");
  const counts = { valid: 0, invalid: 0, full: 0, truncated: 0 };
  for (const v of vectors) {
    const id = `tcId ${v.tcId} ${v.comment}`;
    const key = secretKey(token, v.key);
    // A full tag is CKM_SHA256_HMAC; a truncated one CKM_SHA256_HMAC_GENERAL with its length.
    const mechanism: Mechanism = v.tagSize === 256 ? { mechanism: P.CKM_SHA256_HMAC } : { mechanism: P.CKM_SHA256_HMAC_GENERAL, parameter: v.tagSize / 8 };
    if (v.result === "valid") {
      t.deepEqual(sign(token, mechanism, key, v.msg), v.tag, id);
      t.is(verify(token, mechanism, key, v.msg, v.tag), true, id);
      counts.valid++;
    } else {
      const expected = v.tag.length === v.tagSize / 8 ? P.CKR_SIGNATURE_INVALID : P.CKR_SIGNATURE_LEN_RANGE;
      t.is(verify(token, mechanism, key, v.msg, v.tag), expected, id);
      counts.invalid++;
    }
    counts[v.tagSize === 256 ? "full" : "truncated"]++;
    token.p11.C_DestroyObject(token.session, key);
  }
  t.log(`HMAC-SHA256: ${vectors.length} vectors — ${counts.valid} valid, ${counts.invalid} invalid; ${counts.full} full tags, ${counts.truncated} truncated (HMAC_GENERAL)`);
});
