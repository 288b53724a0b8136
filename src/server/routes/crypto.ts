/**
 * Cryptographic routes (Huawei KMS v1.0): encrypt-data, decrypt-data, re-encrypt, the data-key
 * family (create-datakey, create-datakey-without-plaintext, encrypt-datakey, decrypt-datakey) and
 * gen-random. Field names as the Huawei SDK's models (huaweicloudsdkkms/v2/model/*_request_body.py,
 * *_response.py); encodings as Huawei has them: encrypt-data's ciphertext is base64, data keys,
 * their ciphertexts and random data are hex, lengths travel as JSON strings.
 *
 * Besides Huawei's fields, every sealing and opening request takes the OTC/AWS-style
 * `encryption_context` (OTC api-ref "Encrypting Data", "Creating a DEK"), and encrypt-data /
 * decrypt-data take `additional_authenticated_data` (which the SDK has on the data-key requests
 * only): both are bound into the ciphertext (docs/ciphertext-format.md §3), so whatever can seal
 * with them must be able to open with them.
 *
 * Ciphertext bounds come from blob v1, not from Huawei's figures: our smallest blob (1 byte of
 * plaintext) is 52 bytes, 72 base64 characters, where the SDK documents 128 and OTC 188.
 */
import type * as Api from "../../kms/api.js";
import { BLOB_OVERHEAD_BYTES, MAX_BLOB_BYTES, MAX_PLAINTEXT_BYTES, MIN_BLOB_BYTES } from "../../kms/envelope/blob.js";
import { MAX_AAD_BYTES } from "../../kms/envelope/context.js";
import { MAX_DEK_BYTES } from "../../kms/envelope/datakey.js";
import { KmsError } from "../../kms/errors.js";
import { bytes, fromBase64, fromHex, integerString, object, SEQUENCE, string, type JsonSchema, type KmsRoute, type RouteInput } from "../route.js";
import { KEY_ID } from "./keys.js";

const TAG = "Crypto";

const base64Length = (byteCount: number): number => 4 * Math.ceil(byteCount / 3);

/** encrypt-data's cipher_text: a whole blob in base64 (72..5532 characters). */
const DATA_CIPHER_TEXT = string({
  min: base64Length(MIN_BLOB_BYTES), max: base64Length(MAX_BLOB_BYTES), pattern: "^[A-Za-z0-9+/=]*$",
  description: `Blob v1 in base64 (docs/ciphertext-format.md): ${base64Length(MIN_BLOB_BYTES)}..${base64Length(MAX_BLOB_BYTES)} characters`,
});
/** A data key's blob in hex: a DEK of 1..1024 bytes plus the blob's 51 (104..2150 digits). */
const MIN_DATAKEY_HEX = 2 * MIN_BLOB_BYTES;
const MAX_DATAKEY_HEX = 2 * (BLOB_OVERHEAD_BYTES + MAX_DEK_BYTES);
const DATAKEY_CIPHER_TEXT = string({
  min: MIN_DATAKEY_HEX, max: MAX_DATAKEY_HEX, pattern: "^[0-9a-fA-F]*$",
  description: `A data key's blob v1 in hex: ${MIN_DATAKEY_HEX}..${MAX_DATAKEY_HEX} digits`,
});

const AAD = string({ max: MAX_AAD_BYTES, description: `Bound into the ciphertext; at most ${MAX_AAD_BYTES} bytes of UTF-8, repeated to decrypt` });
const ENCRYPTION_CONTEXT: JsonSchema = {
  type: "object",
  additionalProperties: { type: "string" },
  description: "String → string, at most 8192 characters of JSON; bound into the ciphertext and repeated to decrypt",
};
/**
 * Any name reaches the Kms, which tells Huawei's asymmetric algorithms (KMS.2105: every key here is
 * symmetric) from names Huawei does not define (KMS.0308); an enum here would give both KMS.0308.
 */
const ALGORITHM = string({
  max: 64, description: "SYMMETRIC_DEFAULT (AES-256-GCM), the only algorithm of a symmetric key; RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256 and SM2_ENCRYPT are KMS.2105",
});
const LENGTH = integerString();
/**
 * An optional integer that "" also leaves out. Huawei's create-datakey gives a 256-bit key when
 * datakey_length and key_spec are "both empty" (create_datakey_request_body.py), and clients that
 * serialize unset fields as "" must get that default, not KMS.1901; the Kms reads "" as absent.
 */
function optionalInteger(description: string): JsonSchema {
  return { anyOf: [...(integerString().anyOf as JsonSchema[]), { type: "string", maxLength: 0 }], description };
}

const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

const str = (body: Record<string, unknown>, name: string): string | undefined => body[name] as string | undefined;
const context = (body: Record<string, unknown>, name: string): Record<string, string> | undefined => body[name] as Record<string, string> | undefined;

function bound(body: Record<string, unknown>): Api.BoundFields {
  return { additionalAuthenticatedData: str(body, "additional_authenticated_data"), encryptionContext: context(body, "encryption_context") };
}

/**
 * A string that has no UTF-8 form (a lone surrogate, which JSON's \u escapes can carry) is refused:
 * encoding it would silently put U+FFFD in its place, and decrypting would not return what was sent.
 */
function utf8Text(value: string, field: string): string {
  if (LONE_SURROGATE.test(value)) throw new KmsError("KMS.2101", `${field} holds a lone surrogate, which has no UTF-8 form`);
  return value;
}

const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** The plaintext as UTF-8 text, or undefined when its bytes are not UTF-8. */
function utf8OrUndefined(plaintext: Buffer): string | undefined {
  try {
    return STRICT_UTF8.decode(plaintext);
  } catch {
    return undefined;
  }
}

/** Hex of secret bytes; the buffer is wiped once encoded (the string is what the response needs). */
function hexOnce(value: unknown): string {
  const buffer = bytes(value);
  const hex = buffer.toString("hex");
  buffer.fill(0);
  return hex;
}

/** re-encrypt: a data key's ciphertext (datakey_cipher_length given) travels in hex as create-datakey returns it, any other in base64 as encrypt-data does. */
function reEncryptIsDataKey(input: RouteInput): boolean {
  const length = input.body["datakey_cipher_length"];
  return length !== undefined && length !== "";
}

const DATAKEY_REQUEST = object({
  key_id: KEY_ID,
  key_spec: string({ max: 32, description: "AES_256 (default, also for \"\") or AES_128; not with datakey_length" }),
  datakey_length: optionalInteger("Bits: 8..8192, a multiple of 8; takes precedence over key_spec (Huawei); \"\" for none"),
  additional_authenticated_data: AAD,
  encryption_context: ENCRYPTION_CONTEXT,
  sequence: SEQUENCE,
}, ["key_id"]);

function dataKeyRequest(body: Record<string, unknown>): Api.CreateDataKeyRequest {
  return {
    keyId: body["key_id"] as string, keySpec: str(body, "key_spec"), datakeyLength: body["datakey_length"] as Api.IntegerField | undefined, ...bound(body),
  };
}

export const CRYPTO_ROUTES: KmsRoute[] = [
  {
    method: "POST", path: "/encrypt-data", operationId: "EncryptData", tag: TAG, call: "encryptData",
    summary: "Encrypt 1-4096 bytes of UTF-8 text (AES-256-GCM in the HSM); cipher_text is blob v1 in base64",
    body: object({
      key_id: KEY_ID,
      plain_text: string({ min: 1, max: MAX_PLAINTEXT_BYTES, description: `UTF-8 text of 1..${MAX_PLAINTEXT_BYTES} bytes` }),
      encryption_algorithm: ALGORITHM,
      additional_authenticated_data: AAD,
      encryption_context: ENCRYPTION_CONTEXT,
      sequence: SEQUENCE,
    }, ["key_id", "plain_text"]),
    response: object({ key_id: string(), cipher_text: string({ description: "base64" }) }),
    toRequest: ({ body }) => ({
      keyId: body["key_id"] as string,
      plainText: utf8Text(body["plain_text"] as string, "plain_text"),
      encryptionAlgorithm: str(body, "encryption_algorithm") as Api.EncryptionAlgorithm | undefined,
      ...bound(body),
    } satisfies Api.EncryptDataRequest),
    toResponse: (result) => {
      const r = result as Api.EncryptDataResult;
      return { key_id: r.keyId, cipher_text: bytes(r.cipherText).toString("base64") };
    },
  },
  {
    method: "POST", path: "/decrypt-data", operationId: "DecryptData", tag: TAG, call: "decryptData",
    summary: "Decrypt encrypt-data's cipher_text (the blob names its key). plain_text is the plaintext as UTF-8 text, " +
      "absent when the plaintext is not valid UTF-8 (a library or CLI caller encrypted bytes); plain_text_base64 is always there",
    body: object({
      cipher_text: DATA_CIPHER_TEXT,
      key_id: KEY_ID,
      encryption_algorithm: ALGORITHM,
      additional_authenticated_data: AAD,
      encryption_context: ENCRYPTION_CONTEXT,
      sequence: SEQUENCE,
    }, ["cipher_text"]),
    response: object({ key_id: string(), plain_text: string(), plain_text_base64: string() }),
    toRequest: ({ body }) => ({
      cipherText: fromBase64(body["cipher_text"] as string, "KMS.2201", "cipher_text"),
      keyId: str(body, "key_id"),
      encryptionAlgorithm: str(body, "encryption_algorithm") as Api.EncryptionAlgorithm | undefined,
      ...bound(body),
    } satisfies Api.DecryptDataRequest),
    toResponse: (result) => {
      const r = result as Api.DecryptDataResult;
      const plaintext = bytes(r.plainText);
      const text = utf8OrUndefined(plaintext);
      const body = { key_id: r.keyId, ...(text === undefined ? {} : { plain_text: text }), plain_text_base64: plaintext.toString("base64") };
      plaintext.fill(0);
      return body;
    },
  },
  {
    method: "POST", path: "/re-encrypt", operationId: "ReEncrypt", tag: TAG, call: "reEncrypt",
    summary: "Decrypt a ciphertext and encrypt it under destination_key_id without returning the plaintext. " +
      "A data key's ciphertext (datakey_cipher_length given, its DEK's bytes) is hex in and out, and stays a data key's; any other is base64 in and out",
    body: object({
      cipher_text: string({
        min: base64Length(MIN_BLOB_BYTES), max: base64Length(MAX_BLOB_BYTES), pattern: "^[A-Za-z0-9+/=]*$",
        description: "encrypt-data's cipher_text (base64), or with datakey_cipher_length a data key's (hex)",
      }),
      source_key_id: KEY_ID,
      source_additional_authenticated_data: AAD,
      source_encryption_context: ENCRYPTION_CONTEXT,
      source_encryption_algorithm: ALGORITHM,
      destination_key_id: KEY_ID,
      destination_additional_authenticated_data: AAD,
      destination_encryption_context: ENCRYPTION_CONTEXT,
      destination_encryption_algorithm: ALGORITHM,
      datakey_cipher_length: optionalInteger("The DEK's length in bytes, when cipher_text is a data key's; absent or \"\" for encrypt-data's"),
      sequence: SEQUENCE,
    }, ["cipher_text", "destination_key_id"]),
    response: object({
      key_id: string(), source_key_id: string(), source_encryption_algorithm: string(), destination_encryption_algorithm: string(),
      cipher_text: string({ description: "base64, or hex for a data key's" }),
    }),
    toRequest: (input) => {
      const { body } = input;
      const text = body["cipher_text"] as string;
      return {
        cipherText: reEncryptIsDataKey(input) ? fromHex(text, "KMS.2201", "cipher_text") : fromBase64(text, "KMS.2201", "cipher_text"),
        sourceKeyId: str(body, "source_key_id"),
        sourceAdditionalAuthenticatedData: str(body, "source_additional_authenticated_data"),
        sourceEncryptionContext: context(body, "source_encryption_context"),
        sourceEncryptionAlgorithm: str(body, "source_encryption_algorithm") as Api.EncryptionAlgorithm | undefined,
        destinationKeyId: body["destination_key_id"] as string,
        destinationAdditionalAuthenticatedData: str(body, "destination_additional_authenticated_data"),
        destinationEncryptionContext: context(body, "destination_encryption_context"),
        destinationEncryptionAlgorithm: str(body, "destination_encryption_algorithm") as Api.EncryptionAlgorithm | undefined,
        datakeyCipherLength: body["datakey_cipher_length"] as Api.IntegerField | undefined,
      } satisfies Api.ReEncryptRequest;
    },
    toResponse: (result, input) => {
      const r = result as Api.ReEncryptResult;
      const blob = bytes(r.cipherText);
      return {
        key_id: r.keyId, source_key_id: r.sourceKeyId, source_encryption_algorithm: "SYMMETRIC_DEFAULT", destination_encryption_algorithm: "SYMMETRIC_DEFAULT",
        cipher_text: reEncryptIsDataKey(input) ? blob.toString("hex") : blob.toString("base64"),
      };
    },
  },
  {
    method: "POST", path: "/create-datakey", operationId: "CreateDatakey", tag: TAG, call: "createDataKey",
    summary: "A data key from the HSM's generator: plain_text and cipher_text (blob v1) in hex",
    body: DATAKEY_REQUEST,
    response: object({ key_id: string(), plain_text: string({ description: "hex" }), cipher_text: string({ description: "hex" }) }),
    toRequest: ({ body }) => dataKeyRequest(body),
    toResponse: (result) => {
      const r = result as Api.CreateDataKeyResult;
      return { key_id: r.keyId, plain_text: hexOnce(r.plainText), cipher_text: bytes(r.cipherText).toString("hex") };
    },
  },
  {
    method: "POST", path: "/create-datakey-without-plaintext", operationId: "CreateDatakeyWithoutPlaintext", tag: TAG, call: "createDataKeyWithoutPlaintext",
    summary: "A data key sealed under the key, without its plaintext: cipher_text (blob v1) in hex",
    body: DATAKEY_REQUEST,
    response: object({ key_id: string(), cipher_text: string({ description: "hex" }) }),
    toRequest: ({ body }) => dataKeyRequest(body),
    toResponse: (result) => {
      const r = result as Api.CreateDataKeyWithoutPlaintextResult;
      return { key_id: r.keyId, cipher_text: bytes(r.cipherText).toString("hex") };
    },
  },
  {
    method: "POST", path: "/encrypt-datakey", operationId: "EncryptDatakey", tag: TAG, call: "encryptDataKey",
    summary: "Seal a caller's data key: plain_text is hex(DEK ‖ SHA-256(DEK)), datakey_plain_length the DEK's bytes (1-1024)",
    body: object({
      key_id: KEY_ID,
      plain_text: string({ pattern: "^[0-9a-fA-F]*$", description: "hex(DEK ‖ SHA-256(DEK))" }),
      datakey_plain_length: integerString("The DEK's length in bytes, 1..1024"),
      additional_authenticated_data: AAD,
      encryption_context: ENCRYPTION_CONTEXT,
      sequence: SEQUENCE,
    }, ["key_id", "plain_text", "datakey_plain_length"]),
    response: object({ key_id: string(), cipher_text: string({ description: "hex" }), datakey_length: string({ description: "The DEK's bytes" }) }),
    toRequest: ({ body }) => ({
      keyId: body["key_id"] as string,
      plainText: fromHex(body["plain_text"] as string, "KMS.2101", "plain_text"),
      datakeyPlainLength: body["datakey_plain_length"] as Api.IntegerField,
      ...bound(body),
    } satisfies Api.EncryptDataKeyRequest),
    toResponse: (result) => {
      const r = result as Api.EncryptDataKeyResult;
      return { key_id: r.keyId, cipher_text: bytes(r.cipherText).toString("hex"), datakey_length: String(r.datakeyLength) };
    },
  },
  {
    method: "POST", path: "/decrypt-datakey", operationId: "DecryptDatakey", tag: TAG, call: "decryptDataKey",
    summary: "Open a data key's cipher_text (hex): data_key and datakey_dgst (SHA-256) in hex; datakey_cipher_length is the DEK's bytes",
    body: object({
      key_id: KEY_ID,
      cipher_text: DATAKEY_CIPHER_TEXT,
      datakey_cipher_length: LENGTH,
      additional_authenticated_data: AAD,
      encryption_context: ENCRYPTION_CONTEXT,
      sequence: SEQUENCE,
    }, ["key_id", "cipher_text", "datakey_cipher_length"]),
    response: object({ data_key: string({ description: "hex" }), datakey_length: string(), datakey_dgst: string({ description: "hex SHA-256 of the DEK" }) }),
    toRequest: ({ body }) => ({
      keyId: body["key_id"] as string,
      cipherText: fromHex(body["cipher_text"] as string, "KMS.2201", "cipher_text"),
      datakeyCipherLength: body["datakey_cipher_length"] as Api.IntegerField,
      ...bound(body),
    } satisfies Api.DecryptDataKeyRequest),
    toResponse: (result) => {
      const r = result as Api.DecryptDataKeyResult;
      return { data_key: hexOnce(r.dataKey), datakey_length: String(r.datakeyLength), datakey_dgst: bytes(r.datakeyDgst).toString("hex") };
    },
  },
  {
    method: "POST", path: "/gen-random", operationId: "CreateRandom", tag: TAG, call: "genRandom",
    summary: "Random bytes from the HSM's generator: random_data_length bits (8-8192, a multiple of 8), random_data in hex",
    body: object({ random_data_length: integerString("Bits: 8..8192, a multiple of 8"), sequence: SEQUENCE }, ["random_data_length"]),
    response: object({ random_data: string({ description: "hex" }) }),
    toRequest: ({ body }) => ({ randomDataLength: body["random_data_length"] as Api.IntegerField } satisfies Api.GenRandomRequest),
    toResponse: (result) => ({ random_data: bytes((result as Api.GenRandomResult).randomData).toString("hex") }),
  },
];
