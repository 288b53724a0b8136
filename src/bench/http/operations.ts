/**
 * The KMS HTTP target's --mech table: each operation is a Huawei KMS v1.0 API and the body one
 * trial sends (prepared before the run, untimed). Plaintexts are printable ASCII, so `bytes` is both
 * the string length and the UTF-8 byte count Huawei's plain_text limit (1–4096) counts.
 */
import { BenchError } from "../types.js";
import { kmsCall, refusal, type KmsEndpoint } from "./client.js";

/** What one trial sends: the API operation (last path segment) and its body. */
export interface RequestShape {
  operation: string;
  /** The body; with a sequence, the same body carrying `"sequence"` (fresh signing). */
  body(sequence: string | undefined): string;
}

export interface HttpOperation {
  mech: string;
  description: string;
  /** Whether the size comes from --sizes; otherwise `fixedBytes`. */
  sized: boolean;
  fixedBytes?: number;
  /** Key length of the CMK or data key, bits (reported as key_bits). */
  keyBits: number;
  /** Largest size the API accepts, bytes. */
  maxBytes?: number;
  prepare(endpoint: KmsEndpoint, keyId: string, bytes: number): Promise<RequestShape>;
}

/** `fields` as JSON, and the same with a trailing "sequence" member, without re-serializing the rest. */
function bodyOf(fields: Record<string, string>): (sequence: string | undefined) => string {
  const plain = JSON.stringify(fields);
  const open = plain.slice(0, -1) + ',"sequence":"';
  return (sequence) => (sequence === undefined ? plain : `${open}${sequence}"}`);
}

/** `bytes` printable ASCII characters. */
export function plaintext(bytes: number): string {
  const pattern = "hsmkit bench plaintext 0123456789 ";
  return pattern.repeat(Math.ceil(bytes / pattern.length)).slice(0, bytes);
}

const encryptData: HttpOperation = {
  mech: "encrypt-data",
  description: "POST encrypt-data: plain_text of --sizes bytes under the bench CMK",
  sized: true,
  keyBits: 256,
  maxBytes: 4096,
  prepare: async (_endpoint, keyId, bytes) => ({ operation: "encrypt-data", body: bodyOf({ key_id: keyId, plain_text: plaintext(bytes) }) }),
};

const decryptData: HttpOperation = {
  mech: "decrypt-data",
  description: "POST decrypt-data: a cipher_text of a --sizes-byte plaintext made by encrypt-data before the run",
  sized: true,
  keyBits: 256,
  maxBytes: 4096,
  prepare: async (endpoint, keyId, bytes) => {
    const made = await kmsCall(endpoint, "encrypt-data", { key_id: keyId, plain_text: plaintext(bytes) });
    const cipherText = made.body["cipher_text"];
    if (made.status !== 200 || typeof cipherText !== "string") throw refusal(endpoint, "encrypt-data (making the decrypt-data blob)", made);
    return { operation: "decrypt-data", body: bodyOf({ cipher_text: cipherText }) };
  },
};

const createDataKey: HttpOperation = {
  mech: "create-datakey",
  description: "POST create-datakey: an AES_256 data key (32 bytes) under the bench CMK",
  sized: false,
  fixedBytes: 32,
  keyBits: 256,
  prepare: async (_endpoint, keyId) => ({ operation: "create-datakey", body: bodyOf({ key_id: keyId, key_spec: "AES_256" }) }),
};

const describeKey: HttpOperation = {
  mech: "describe-key",
  description: "POST describe-key of the bench CMK (no cryptography: HTTP, authentication and a key lookup)",
  sized: false,
  fixedBytes: 0,
  keyBits: 256,
  prepare: async (_endpoint, keyId) => ({ operation: "describe-key", body: bodyOf({ key_id: keyId }) }),
};

export const HTTP_OPERATIONS: readonly HttpOperation[] = [encryptData, decryptData, createDataKey, describeKey];

export interface HttpTrial {
  operation: HttpOperation;
  bytes: number;
}

/** Parses --mech for the KMS HTTP target (comma-separated operation names, or all). */
export function parseHttpMechs(list: string): HttpOperation[] {
  const items = list.split(",").map((s) => s.trim().toLowerCase()).filter((s) => s.length > 0);
  if (items.length === 0) throw new BenchError("--mech needs at least one operation", 2);
  if (items.length === 1 && items[0] === "all") return [...HTTP_OPERATIONS];
  return items.map((item) => {
    const found = HTTP_OPERATIONS.find((o) => o.mech === item);
    if (found === undefined) throw new BenchError(`the KMS HTTP target has no operation "${item}"; choose from ${HTTP_OPERATIONS.map((o) => o.mech).join(", ")}`, 2);
    return found;
  });
}

/** Operation × size, in --mech then --sizes order; sizes above an API's limit are refused (exit 2). */
export function expandHttpTrials(operations: readonly HttpOperation[], sizes: readonly number[]): HttpTrial[] {
  const trials: HttpTrial[] = [];
  for (const operation of operations) {
    for (const bytes of operation.sized ? sizes : [operation.fixedBytes ?? 0]) {
      if (operation.maxBytes !== undefined && bytes > operation.maxBytes) {
        throw new BenchError(`--sizes: ${operation.mech} takes 1–${operation.maxBytes} bytes (Huawei's plain_text limit), got ${bytes}`, 2);
      }
      trials.push({ operation, bytes });
    }
  }
  return trials;
}
