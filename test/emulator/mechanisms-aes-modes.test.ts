// CKM_AES_ECB, CKM_AES_CBC, CKM_AES_CBC_PAD and CKM_AES_CTR through the PKCS#11 surface, against
// node:crypto (OpenSSL), single- and multi-part, with the length and padding errors PKCS#11 names.
import test from "ava";
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import type { Mechanism } from "../../emulator/pkcs11.js";
import { P, decrypt, decryptParts, encrypt, encryptParts, openToken, secretKey, throwsCkr } from "./mechanisms-helpers.js";

/** CK_AES_CTR_PARAMS as its C bytes (LP64): ulCounterBits (8 bytes LE), cb[16]. */
function ctrParameter(counterBits: number, counterBlock: Buffer): Buffer {
  const bits = Buffer.alloc(8);
  bits.writeBigUInt64LE(BigInt(counterBits));
  return Buffer.concat([bits, counterBlock]);
}

interface Mode {
  name: string;
  mechanism: (iv: Buffer) => Mechanism;
  openssl: (bits: number) => string;
  iv: boolean;
  padding: boolean;
  blocks: boolean;
}

const MODES: Mode[] = [
  { name: "ECB", mechanism: () => ({ mechanism: P.CKM_AES_ECB }), openssl: (b) => `aes-${b}-ecb`, iv: false, padding: false, blocks: true },
  { name: "CBC", mechanism: (iv) => ({ mechanism: P.CKM_AES_CBC, parameter: iv }), openssl: (b) => `aes-${b}-cbc`, iv: true, padding: false, blocks: true },
  { name: "CBC_PAD", mechanism: (iv) => ({ mechanism: P.CKM_AES_CBC_PAD, parameter: iv }), openssl: (b) => `aes-${b}-cbc`, iv: true, padding: true, blocks: false },
  { name: "CTR", mechanism: (iv) => ({ mechanism: P.CKM_AES_CTR, parameter: ctrParameter(128, iv) }), openssl: (b) => `aes-${b}-ctr`, iv: true, padding: false, blocks: false },
];

function nodeCrypt(encrypting: boolean, mode: Mode, value: Buffer, iv: Buffer, data: Buffer): Buffer {
  const algorithm = mode.openssl(value.length * 8);
  const cipher = encrypting ? createCipheriv(algorithm, value, mode.iv ? iv : null) : createDecipheriv(algorithm, value, mode.iv ? iv : null);
  cipher.setAutoPadding(mode.padding);
  return Buffer.concat([cipher.update(data), cipher.final()]);
}

test("every mode, key size and length agrees with node:crypto, single- and multi-part", (t) => {
  const token = openToken(t);
  let checked = 0;
  for (const mode of MODES) {
    for (const keyBytes of [16, 24, 32]) {
      const value = randomBytes(keyBytes);
      const key = secretKey(token, value, P.CKK_AES);
      for (const size of [0, 1, 15, 16, 17, 31, 32, 33, 64, 100, 4096, 4097]) {
        if (mode.blocks && size % 16 !== 0) continue;
        const iv = randomBytes(16);
        const mechanism = mode.mechanism(iv);
        const data = randomBytes(size);
        const expected = nodeCrypt(true, mode, value, iv, data);
        t.deepEqual(encrypt(token, mechanism, key, data), expected, `${mode.name}-${keyBytes * 8} ${size}`);
        t.deepEqual(decrypt(token, mechanism, key, expected), data);
        for (const chunks of [[1], [5, 16, 3], [16], [100, 1]]) {
          t.deepEqual(encryptParts(token, mechanism, key, data, chunks), expected, `${mode.name} ${size} ${chunks.join(",")}`);
          t.deepEqual(decryptParts(token, mechanism, key, expected, chunks), data);
        }
        checked++;
      }
    }
  }
  t.log(`${checked} mode × key × length cases`);
});

test("ECB and CBC refuse partial blocks: CKR_DATA_LEN_RANGE / CKR_ENCRYPTED_DATA_LEN_RANGE", (t) => {
  const token = openToken(t);
  const { p11, session } = token;
  const key = secretKey(token, randomBytes(32), P.CKK_AES);
  for (const mechanism of [{ mechanism: P.CKM_AES_ECB }, { mechanism: P.CKM_AES_CBC, parameter: randomBytes(16) }]) {
    throwsCkr(t, () => encrypt(token, mechanism, key, Buffer.alloc(17)), P.CKR_DATA_LEN_RANGE);
    throwsCkr(t, () => decrypt(token, mechanism, key, Buffer.alloc(15)), P.CKR_ENCRYPTED_DATA_LEN_RANGE);
    // Multi-part: the leftover shows at final, and the operation is over.
    p11.C_EncryptInit(session, mechanism, key);
    t.is(p11.C_EncryptUpdate(session, Buffer.alloc(20), Buffer.alloc(64)).length, 16);
    throwsCkr(t, () => p11.C_EncryptFinal(session, Buffer.alloc(64)), P.CKR_DATA_LEN_RANGE);
    throwsCkr(t, () => p11.C_EncryptFinal(session, Buffer.alloc(64)), P.CKR_OPERATION_NOT_INITIALIZED);
    p11.C_DecryptInit(session, mechanism, key);
    p11.C_DecryptUpdate(session, Buffer.alloc(40), Buffer.alloc(64));
    throwsCkr(t, () => p11.C_DecryptFinal(session, Buffer.alloc(64)), P.CKR_ENCRYPTED_DATA_LEN_RANGE);
  }
  // CBC_PAD decrypts whole blocks only, and at least one.
  const cbcPad = { mechanism: P.CKM_AES_CBC_PAD, parameter: randomBytes(16) };
  throwsCkr(t, () => decrypt(token, cbcPad, key, Buffer.alloc(0)), P.CKR_ENCRYPTED_DATA_LEN_RANGE);
  throwsCkr(t, () => decrypt(token, cbcPad, key, Buffer.alloc(31)), P.CKR_ENCRYPTED_DATA_LEN_RANGE);
});

test("CBC_PAD: bad padding is CKR_ENCRYPTED_DATA_INVALID, single- and multi-part", (t) => {
  const token = openToken(t);
  const value = randomBytes(16);
  const key = secretKey(token, value, P.CKK_AES);
  const iv = randomBytes(16);
  const mechanism = { mechanism: P.CKM_AES_CBC_PAD, parameter: iv };
  // Plaintext blocks whose last bytes are not PKCS#7 padding, encrypted raw.
  for (const tail of [Buffer.from([0]), Buffer.from([17]), Buffer.from([2, 3]), Buffer.from([16, 16, 15])]) {
    const block = Buffer.concat([randomBytes(16 - tail.length), tail]);
    const cipher = createCipheriv("aes-128-cbc", value, iv).setAutoPadding(false);
    const ciphertext = Buffer.concat([cipher.update(block), cipher.final()]);
    throwsCkr(t, () => decrypt(token, mechanism, key, ciphertext), P.CKR_ENCRYPTED_DATA_INVALID, tail.toString("hex"));
    throwsCkr(t, () => decryptParts(token, mechanism, key, ciphertext, [7]), P.CKR_ENCRYPTED_DATA_INVALID);
  }
  // A full block of padding is valid.
  const full = nodeCrypt(true, MODES[2]!, value, iv, randomBytes(32));
  t.is(decrypt(token, mechanism, key, full).length, 32);
});

test("CTR: CK_AES_CTR_PARAMS, counter bits and overflow", (t) => {
  const token = openToken(t);
  const { p11, session } = token;
  const value = randomBytes(32);
  const key = secretKey(token, value, P.CKK_AES);
  // A 32-bit counter at its last value: one block works, the next would wrap.
  const block = Buffer.concat([randomBytes(12), Buffer.from("ffffffff", "hex")]);
  const one = encrypt(token, { mechanism: P.CKM_AES_CTR, parameter: ctrParameter(32, block) }, key, randomBytes(16));
  t.is(one.length, 16);
  throwsCkr(t, () => encrypt(token, { mechanism: P.CKM_AES_CTR, parameter: ctrParameter(32, block) }, key, randomBytes(17)), P.CKR_DATA_LEN_RANGE);
  throwsCkr(t, () => decrypt(token, { mechanism: P.CKM_AES_CTR, parameter: ctrParameter(32, block) }, key, randomBytes(17)), P.CKR_ENCRYPTED_DATA_LEN_RANGE);
  // With the whole block as the counter, the same start carries into the upper bytes as OpenSSL does.
  const data = randomBytes(48);
  const expected = nodeCrypt(true, MODES[3]!, value, block, data);
  t.deepEqual(encrypt(token, { mechanism: P.CKM_AES_CTR, parameter: ctrParameter(128, block) }, key, data), expected);
  // A 4-byte CK_ULONG (LLP64 layout) is read too.
  const bits32 = Buffer.alloc(4);
  bits32.writeUInt32LE(128);
  t.deepEqual(encrypt(token, { mechanism: P.CKM_AES_CTR, parameter: Buffer.concat([bits32, block]) }, key, data), expected);
  for (const parameter of [ctrParameter(0, block), ctrParameter(129, block), block, Buffer.alloc(25), undefined, 5]) {
    throwsCkr(t, () => p11.C_EncryptInit(session, { mechanism: P.CKM_AES_CTR, parameter } as Mechanism, key), P.CKR_MECHANISM_PARAM_INVALID);
  }
});

test("parameters, key types and usage flags", (t) => {
  const token = openToken(t);
  const { p11, session } = token;
  const key = secretKey(token, randomBytes(16), P.CKK_AES);
  throwsCkr(t, () => p11.C_EncryptInit(session, { mechanism: P.CKM_AES_ECB, parameter: randomBytes(16) }, key), P.CKR_MECHANISM_PARAM_INVALID);
  for (const mechanism of [P.CKM_AES_CBC, P.CKM_AES_CBC_PAD]) {
    for (const parameter of [undefined, randomBytes(8), randomBytes(17), { type: P.CK_PARAMS_AES_CBC, iv: randomBytes(16) }]) {
      throwsCkr(t, () => p11.C_EncryptInit(session, { mechanism, parameter } as Mechanism, key), P.CKR_MECHANISM_PARAM_INVALID);
    }
  }
  const generic = secretKey(token, randomBytes(16));
  throwsCkr(t, () => p11.C_EncryptInit(session, { mechanism: P.CKM_AES_ECB }, generic), P.CKR_KEY_TYPE_INCONSISTENT);
  const decryptOnly = secretKey(token, randomBytes(16), P.CKK_AES, [{ type: P.CKA_ENCRYPT, value: false }]);
  throwsCkr(t, () => p11.C_EncryptInit(session, { mechanism: P.CKM_AES_ECB }, decryptOnly), P.CKR_KEY_FUNCTION_NOT_PERMITTED);
  t.notThrows(() => decrypt(token, { mechanism: P.CKM_AES_ECB }, decryptOnly, Buffer.alloc(16)));
  const cbcOnly = secretKey(token, randomBytes(16), P.CKK_AES, [{ type: P.CKA_ALLOWED_MECHANISMS, value: [P.CKM_AES_CBC] } as never]);
  throwsCkr(t, () => p11.C_EncryptInit(session, { mechanism: P.CKM_AES_ECB }, cbcOnly), P.CKR_MECHANISM_INVALID);
});

test("buffers: CKR_BUFFER_TOO_SMALL keeps the operation, with exact lengths for update and final", (t) => {
  const token = openToken(t);
  const { p11, session } = token;
  const key = secretKey(token, randomBytes(16), P.CKK_AES);
  const mechanism = { mechanism: P.CKM_AES_CBC_PAD, parameter: randomBytes(16) };
  p11.C_EncryptInit(session, mechanism, key);
  throwsCkr(t, () => p11.C_Encrypt(session, Buffer.alloc(20), Buffer.alloc(31)), P.CKR_BUFFER_TOO_SMALL);
  t.is(p11.C_Encrypt(session, Buffer.alloc(20), Buffer.alloc(32)).length, 32);
  p11.C_EncryptInit(session, mechanism, key);
  throwsCkr(t, () => p11.C_EncryptUpdate(session, Buffer.alloc(40), Buffer.alloc(31)), P.CKR_BUFFER_TOO_SMALL);
  t.is(p11.C_EncryptUpdate(session, Buffer.alloc(40), Buffer.alloc(32)).length, 32);
  throwsCkr(t, () => p11.C_EncryptFinal(session, Buffer.alloc(15)), P.CKR_BUFFER_TOO_SMALL);
  t.is(p11.C_EncryptFinal(session, Buffer.alloc(16)).length, 16);
});
