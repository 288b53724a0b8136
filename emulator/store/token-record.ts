/**
 * token.json: what a token keeps outside its objects — identity, label, the PIN records, and the
 * wrapped object key. It is JSON so that people (and `hsmkit token info`) can read it, and holds
 * no key byte in clear:
 *
 *   {
 *     "format": "hsmkit-token-v1",
 *     "serial": "9f3c2a17d04b6e85",          CK_TOKEN_INFO.serialNumber (16 characters at most)
 *     "label": "kms",                        CK_TOKEN_INFO.label (UTF-8; the first 32 bytes are shown)
 *     "initializedAt": "2025-01-01T00:00:00.000Z",
 *     "tokenId": "<32 hex digits>",          random, new at every C_InitToken; object files carry it
 *     "objectKey": "<base64>",               the object-sealing key, AES-KWP-wrapped under the token key
 *     "pins": {
 *       "so":   { "kdf": { "name": "scrypt", "N": 16384, "r": 8, "p": 1 }, "salt": "<base64>",
 *                 "wrappedTokenKey": "<base64>", "failures": 0 },
 *       "user": { … the same … } | null
 *     }
 *   }
 *
 * The token key (AES-256) exists on disk only inside `wrappedTokenKey`: AES-KWP under
 * scrypt(PIN, salt) — once per PIN. `failures` counts consecutive wrong PINs and is persisted so
 * a restart does not reset the lockout (Token.verify locks at MAX_PIN_FAILURES).
 *
 * Decoding validates every field, including the scrypt cost, so a tampered file cannot make a
 * login allocate unbounded memory.
 */
import { MAX_PIN_FAILURES, type KdfParams, type PinRecord } from "../token.js";
import { TokenFileError } from "./errors.js";

export const TOKEN_FORMAT = "hsmkit-token-v1";
export const TOKEN_ID_BYTES = 16;
/** AES-KWP of a 32-byte key: 32 bytes padded to 8, plus the 8-byte integrity block (RFC 5649). */
export const WRAPPED_KEY_BYTES = 40;
/**
 * Label bytes accepted from a file. CK_TOKEN_INFO.label shows the first 32; the emulator keeps
 * whatever C_InitToken was given, so the file must take longer ones too.
 */
export const MAX_LABEL_BYTES = 1024;
/** Serial number characters: CK_TOKEN_INFO.serialNumber is 16. */
export const MAX_SERIAL = 16;

/** scrypt memory (128·N·r bytes) accepted from a file: 1 GiB. */
const MAX_KDF_MEMORY = 1 << 30;

export interface TokenRecord {
  serial: string;
  label: string;
  initializedAt: string;
  /** Random; identifies this initialization of the token (object files carry it). */
  tokenId: Buffer;
  /** The object-sealing key (used only with AES-GCM), AES-KWP-wrapped under the token key. */
  wrappedObjectKey: Buffer;
  so: PinRecord;
  user: PinRecord | null;
}

interface PinJson {
  kdf: { name: "scrypt"; N: number; r: number; p: number };
  salt: string;
  wrappedTokenKey: string;
  failures: number;
}

function pinJson(record: PinRecord): PinJson {
  return {
    kdf: { name: "scrypt", N: record.kdf.N, r: record.kdf.r, p: record.kdf.p },
    salt: record.salt.toString("base64"),
    wrappedTokenKey: record.wrappedTokenKey.toString("base64"),
    failures: record.failures,
  };
}

/** The file's bytes. Key order is fixed, so equal records encode to equal bytes. */
export function encodeTokenRecord(record: TokenRecord): Buffer {
  const json = {
    format: TOKEN_FORMAT,
    serial: record.serial,
    label: record.label,
    initializedAt: record.initializedAt,
    tokenId: record.tokenId.toString("hex"),
    objectKey: record.wrappedObjectKey.toString("base64"),
    pins: { so: pinJson(record.so), user: record.user === null ? null : pinJson(record.user) },
  };
  return Buffer.from(JSON.stringify(json, null, 2) + "\n", "utf8");
}

/** Checks scrypt parameters: N a power of two ≥ 2, r and p ≥ 1, memory within MAX_KDF_MEMORY. */
export function checkKdf(kdf: KdfParams): string | undefined {
  const { N, r, p } = kdf;
  if (!Number.isInteger(N) || N < 2 || (N & (N - 1)) !== 0 || N > 2 ** 30) return "N must be a power of two from 2 to 2^30";
  if (!Number.isInteger(r) || r < 1 || r > 64) return "r must be 1..64";
  if (!Number.isInteger(p) || p < 1 || p > 16) return "p must be 1..16";
  if (128 * N * r > MAX_KDF_MEMORY) return "128·N·r must not exceed 1 GiB";
  return undefined;
}

class Reader {
  constructor(private readonly path: string) {}

  fail(reason: string): never {
    throw new TokenFileError(this.path, reason);
  }

  object(value: unknown, name: string): Record<string, unknown> {
    if (typeof value !== "object" || value === null || Array.isArray(value)) this.fail(`${name} must be an object`);
    return value as Record<string, unknown>;
  }

  string(value: unknown, name: string): string {
    if (typeof value !== "string") this.fail(`${name} must be a string`);
    return value;
  }

  bytes(value: unknown, name: string, encoding: "hex" | "base64", min: number, max: number): Buffer {
    const text = this.string(value, name);
    const pattern = encoding === "hex" ? /^(?:[0-9a-f]{2})*$/ : /^[A-Za-z0-9+/]*={0,2}$/;
    if (!pattern.test(text)) this.fail(`${name} is not ${encoding}`);
    const bytes = Buffer.from(text, encoding);
    if (bytes.length < min || bytes.length > max) this.fail(`${name} must be ${min === max ? min : `${min}..${max}`} bytes`);
    return bytes;
  }

  integer(value: unknown, name: string, min: number, max: number): number {
    if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) this.fail(`${name} must be an integer ${min}..${max}`);
    return value;
  }

  pin(value: unknown, name: string): PinRecord {
    const json = this.object(value, name);
    const kdfJson = this.object(json["kdf"], `${name}.kdf`);
    if (kdfJson["name"] !== "scrypt") this.fail(`${name}.kdf.name must be "scrypt"`);
    const kdf = {
      N: this.integer(kdfJson["N"], `${name}.kdf.N`, 2, 2 ** 30),
      r: this.integer(kdfJson["r"], `${name}.kdf.r`, 1, 64),
      p: this.integer(kdfJson["p"], `${name}.kdf.p`, 1, 16),
    };
    const bad = checkKdf(kdf);
    if (bad !== undefined) this.fail(`${name}.kdf: ${bad}`);
    return {
      kdf,
      salt: this.bytes(json["salt"], `${name}.salt`, "base64", 8, 64),
      wrappedTokenKey: this.bytes(json["wrappedTokenKey"], `${name}.wrappedTokenKey`, "base64", WRAPPED_KEY_BYTES, WRAPPED_KEY_BYTES),
      // A count above the limit (edited by hand) still means locked.
      failures: Math.min(this.integer(json["failures"], `${name}.failures`, 0, Number.MAX_SAFE_INTEGER), MAX_PIN_FAILURES),
    };
  }
}

/** Parses and validates token.json; TokenFileError (naming `path`) on anything amiss. */
export function decodeTokenRecord(bytes: Buffer, path: string): TokenRecord {
  const read = new Reader(path);
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString("utf8"));
  } catch {
    read.fail("not JSON");
  }
  const json = read.object(parsed, "token");
  if (json["format"] !== TOKEN_FORMAT) read.fail(`format must be "${TOKEN_FORMAT}"`);
  const serial = read.string(json["serial"], "serial");
  if (serial.length === 0 || serial.length > MAX_SERIAL || !/^[\x20-\x7e]+$/.test(serial)) read.fail(`serial must be 1..${MAX_SERIAL} printable ASCII characters`);
  const label = read.string(json["label"], "label");
  if (Buffer.byteLength(label, "utf8") > MAX_LABEL_BYTES) read.fail(`label must be at most ${MAX_LABEL_BYTES} bytes`);
  const pins = read.object(json["pins"], "pins");
  return {
    serial,
    label,
    initializedAt: read.string(json["initializedAt"], "initializedAt"),
    tokenId: read.bytes(json["tokenId"], "tokenId", "hex", TOKEN_ID_BYTES, TOKEN_ID_BYTES),
    wrappedObjectKey: read.bytes(json["objectKey"], "objectKey", "base64", WRAPPED_KEY_BYTES, WRAPPED_KEY_BYTES),
    so: read.pin(pins["so"], "pins.so"),
    user: pins["user"] === null ? null : read.pin(pins["user"], "pins.user"),
  };
}
