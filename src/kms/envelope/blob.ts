/**
 * Ciphertext blob v1: what encrypt-data, create-datakey and encrypt-datakey return, and what
 * decrypt-data and decrypt-datakey take back. Specified in docs/ciphertext-format.md; in short:
 *
 *     offset  size  field
 *          0     2  magic "HK" (0x48 0x4B)
 *          2     1  format 0x01
 *          3    16  key id (the CMK's UUID as 16 bytes)
 *         19     4  key version (u32, big-endian)
 *         23    12  IV (from the token's generator)
 *         35     n  ciphertext, n = plaintext length (1..4096)
 *       35+n    16  GCM tag
 *
 * AES-256-GCM under the CMK version, in the token, with additional data
 *     header (bytes 0..35) ‖ encodeBoundContext(purpose, { AAD string, encryption context })
 * so that no byte of the header, no other purpose and no other context can be substituted: a
 * blob cannot be moved to another key, version or context. The blob is self-describing: decrypting
 * needs no key id from the caller.
 *
 * Parsing is bounds-checked and total: every malformed input, like every authentication failure,
 * is the one opaque KmsError KMS.2201 ("Invalid cipher_text"), whatever was wrong.
 */
// Imported: the global Buffer is an accessor on globalThis, and these paths read it on every call.
import { Buffer } from "node:buffer";
import { KmsError } from "../errors.js";
import { GCM_IV_BYTES, GCM_TAG_BYTES, type KmsBackend, type VersionRef } from "../backend/backend.js";
import { encodeBoundContextAfter, type BoundContext, type CiphertextPurpose } from "./context.js";

/** "HK". */
export const BLOB_MAGIC = Buffer.from("HK", "latin1");
export const BLOB_FORMAT_V1 = 0x01;
export const KEY_ID_BYTES = 16;
/** magic 2 + format 1 + key id 16 + version 4 + IV 12. */
export const HEADER_BYTES = 2 + 1 + KEY_ID_BYTES + 4 + GCM_IV_BYTES;
/** Header and tag: what a blob adds to its plaintext (51 bytes). */
export const BLOB_OVERHEAD_BYTES = HEADER_BYTES + GCM_TAG_BYTES;
/** Plaintext bounds: Huawei encrypt-data takes 1..4096 bytes; data keys (8..8192 bits) fit within them. */
export const MIN_PLAINTEXT_BYTES = 1;
export const MAX_PLAINTEXT_BYTES = 4096;
/** Blob bounds that follow: 52..4147 bytes (72..5532 base64 characters; 104..8294 hex). */
export const MIN_BLOB_BYTES = BLOB_OVERHEAD_BYTES + MIN_PLAINTEXT_BYTES;
export const MAX_BLOB_BYTES = BLOB_OVERHEAD_BYTES + MAX_PLAINTEXT_BYTES;
/** Largest key version a blob can name (u32). */
export const MAX_KEY_VERSION = 0xffff_ffff;

const OFFSET_FORMAT = 2;
const OFFSET_KEY_ID = 3;
const OFFSET_VERSION = OFFSET_KEY_ID + KEY_ID_BYTES;
const OFFSET_IV = OFFSET_VERSION + 4;

/** What the header names. */
export interface BlobHeader {
  /** The CMK's id, as a lowercase UUID string. */
  keyId: string;
  /** The CMK version, 0..2^32-1. */
  version: number;
  /** The GCM IV, 12 bytes. */
  iv: Buffer;
}

export interface ParsedBlob extends BlobHeader {
  /** The 35 header bytes, verbatim (part of the GCM additional data). */
  header: Buffer;
  /** ciphertext ‖ tag. */
  sealed: Buffer;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/iu;

/** The 16 bytes of a key id given as a UUID (any case). Error: KMS.0205 (invalid key ID). */
export function keyIdToBytes(keyId: string): Buffer {
  if (typeof keyId !== "string" || !UUID.test(keyId)) throw new KmsError("KMS.0205", "a key id is a UUID");
  return Buffer.from(keyId.replace(/-/gu, ""), "hex");
}

/** The lowercase UUID text of 16 key-id bytes. */
export function keyIdFromBytes(bytes: Uint8Array): string {
  if (bytes.length !== KEY_ID_BYTES) throw new RangeError(`a key id is ${KEY_ID_BYTES} bytes`);
  return keyIdAt(bytes, 0);
}

/** Two lowercase hex digits for each byte value. */
const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"));

/** The UUID text of bytes[at..at+16), from the table. */
function uuidText(b: Uint8Array, at: number): string {
  const h = (i: number): string => HEX[b[at + i]!]!;
  return h(0) + h(1) + h(2) + h(3) + "-" + h(4) + h(5) + "-" + h(6) + h(7) + "-" + h(8) + h(9) + "-" +
    h(10) + h(11) + h(12) + h(13) + h(14) + h(15);
}

/**
 * Key ids named by recent blobs, direct-mapped by their last byte (random in a UUID v4). Every
 * opened blob names its key; for a hot key the text is then found, not built — and it is the same
 * string each time, whose hash the key cache's maps have computed already, where a freshly built
 * string is a rope to flatten and hash on every lookup.
 */
const recentKeyIds: Array<{ bytes: Uint8Array; text: string } | undefined> = new Array(256).fill(undefined);

/** The UUID text of bytes[at..at+16): every opened blob names its key this way. */
function keyIdAt(b: Uint8Array, at: number): string {
  const slot = b[at + KEY_ID_BYTES - 1]!;
  const recent = recentKeyIds[slot];
  if (recent !== undefined) {
    const known = recent.bytes;
    let i = 0;
    while (i < KEY_ID_BYTES && known[i] === b[at + i]) i++;
    if (i === KEY_ID_BYTES) return recent.text;
  }
  const text = uuidText(b, at);
  // A copy (Buffer#slice would be a view): the caller may reuse its bytes.
  recentKeyIds[slot] = { bytes: new Uint8Array(b.subarray(at, at + KEY_ID_BYTES)), text };
  return text;
}

function checkVersionNumber(version: number): void {
  if (!Number.isInteger(version) || version < 0 || version > MAX_KEY_VERSION) {
    throw new KmsError("KMS.0308", `key version must be an integer 0..${MAX_KEY_VERSION}`);
  }
}

/** The 35 header bytes. Errors: KMS.0205 (key id), KMS.0308 (version, IV length). */
export function encodeHeader(header: BlobHeader): Buffer {
  const out = Buffer.allocUnsafe(HEADER_BYTES);
  writeHeader(out, header.keyId, header.version, header.iv);
  return out;
}

/** Writes the header into out[0..35). Same checks as encodeHeader. */
function writeHeader(out: Buffer, keyId: string, version: number, iv: Uint8Array): void {
  checkVersionNumber(version);
  if (!(iv instanceof Uint8Array) || iv.length !== GCM_IV_BYTES) throw new KmsError("KMS.0308", `the IV is ${GCM_IV_BYTES} bytes`);
  if (typeof keyId !== "string" || !writeKeyId(out, OFFSET_KEY_ID, keyId)) throw new KmsError("KMS.0205", "a key id is a UUID");
  out[0] = BLOB_MAGIC[0]!;
  out[1] = BLOB_MAGIC[1]!;
  out[OFFSET_FORMAT] = BLOB_FORMAT_V1;
  out.writeUInt32BE(version, OFFSET_VERSION);
  out.set(iv, OFFSET_IV);
}

const UUID_TEXT_LENGTH = 36;
/** Where the UUID text has its hyphens (8-4-4-4-12 hex digits). */
function isUuidHyphen(index: number): boolean {
  return index === 8 || index === 13 || index === 18 || index === 23;
}

/** 0..15 for a hex digit's UTF-16 unit (either case), -1 for anything else. */
function hexDigit(unit: number): number {
  if (unit >= 0x30 && unit <= 0x39) return unit - 0x30;
  const lower = unit | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x61 + 10 : -1;
}

/**
 * Writes the 16 bytes of a UUID (the UUID regular expression's language: 8-4-4-4-12 hex digits of
 * either case) at out[at..at+16): remembered for ids sealed under recently, else parsed digit by
 * digit (the regular expression and five hex decodes cost more than the whole header). False when
 * `text` is not a UUID (out[at..at+16) is then unspecified).
 */
function writeKeyId(out: Buffer, at: number, text: string): boolean {
  const known = sealedKeyIds.get(text);
  if (known !== undefined) {
    for (let i = 0; i < KEY_ID_BYTES; i++) out[at + i] = known[i]!;
    return true;
  }
  if (!parseKeyId(out, at, text)) return false;
  if (sealedKeyIds.size >= MAX_SEALED_KEY_IDS) sealedKeyIds.clear();
  sealedKeyIds.set(text, new Uint8Array(out.subarray(at, at + KEY_ID_BYTES)));
  return true;
}

/**
 * The bytes of key ids sealed under recently, by their text: every sealed message names its key,
 * and for a hot key a lookup and 16 stores replace the parse. Bounded: emptied when full.
 */
const sealedKeyIds = new Map<string, Uint8Array>();
const MAX_SEALED_KEY_IDS = 4096;

/** writeKeyId's parse, digit by digit. */
function parseKeyId(out: Buffer, at: number, text: string): boolean {
  if (text.length !== UUID_TEXT_LENGTH) return false;
  for (let i = 0; i < UUID_TEXT_LENGTH; i++) {
    if (isUuidHyphen(i)) {
      if (text.charCodeAt(i) !== 0x2d) return false;
      continue;
    }
    const high = hexDigit(text.charCodeAt(i));
    const low = hexDigit(text.charCodeAt(++i));
    if (high < 0 || low < 0) return false;
    out[at++] = (high << 4) | low;
  }
  return true;
}

function invalid(detail: string): KmsError {
  return new KmsError("KMS.2201", detail);
}

/**
 * Reads a blob's structure without any key: checks type, length bounds, magic and format, and
 * splits it. Never throws anything but KMS.2201. The returned Buffers view the caller's bytes.
 */
export function parseBlob(blob: unknown): ParsedBlob {
  if (!(blob instanceof Uint8Array)) throw invalid("a ciphertext blob is bytes");
  if (blob.length < MIN_BLOB_BYTES || blob.length > MAX_BLOB_BYTES) throw invalid(`blob of ${blob.length} bytes is outside ${MIN_BLOB_BYTES}..${MAX_BLOB_BYTES}`);
  const bytes = Buffer.isBuffer(blob) ? blob : Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  if (bytes[0] !== BLOB_MAGIC[0] || bytes[1] !== BLOB_MAGIC[1]) throw invalid("bad magic");
  if (bytes[OFFSET_FORMAT] !== BLOB_FORMAT_V1) throw invalid("unknown format");
  return {
    keyId: keyIdAt(bytes, OFFSET_KEY_ID),
    version: bytes.readUInt32BE(OFFSET_VERSION),
    iv: bytes.subarray(OFFSET_IV, HEADER_BYTES),
    header: bytes.subarray(0, HEADER_BYTES),
    sealed: bytes.subarray(HEADER_BYTES),
  };
}

/** Plaintext bytes a well-formed blob holds (its length less the 51 bytes of header and tag). */
export function blobPlaintextLength(blob: Uint8Array): number {
  return blob.length - BLOB_OVERHEAD_BYTES;
}

/** A caller's purpose and bound context, validated and encoded for Envelope#openParsed. */
export interface OpenBinding {
  /** Room for the header ‖ the encoded bound context: the GCM additional data once the header is in. */
  readonly aad: Buffer;
}

/**
 * Checks and encodes what the caller binds (KMS.0208/0308) before anything of the blob is read, as
 * open() does: a bad request is reported as such whatever the blob, and its answer cannot tell
 * whether the key the blob names exists (docs/ciphertext-format.md §4). One binding opens one blob.
 */
export function bindForOpen(purpose: CiphertextPurpose, bound?: BoundContext): OpenBinding {
  return { aad: encodeBoundContextAfter(HEADER_BYTES, purpose, bound) };
}

/** Which CMK version seals a blob. */
export interface SealTarget {
  /** The CMK's id (UUID). */
  keyId: string;
  /** The version number written into the header. */
  version: number;
  /** The version's wrapped key, for the backend. */
  key: VersionRef;
}

/**
 * Finds the version a blob names, for open(): the version's key, or undefined when it does not
 * exist for this caller (unknown key, another project's key, a destroyed version) — all of which
 * then fail with the same opaque KMS.2201. It may also throw its own KmsError (say, KMS.0209 for a
 * disabled key) when the API reports that case distinctly.
 */
export type VersionResolver = (header: BlobHeader) => VersionRef | undefined;

export interface OpenedBlob {
  keyId: string;
  version: number;
  plaintext: Buffer;
}

export interface EnvelopeOptions {
  /** IVs drawn from the token per C_GenerateRandom call (default 256; 1 draws one per seal). */
  ivBatch?: number;
}

/**
 * Seals and opens blobs through a backend. IVs come from the token's generator, drawn
 * `ivBatch` at a time (one C_GenerateRandom of 12 × ivBatch bytes instead of one per message);
 * each IV is used once. Random 96-bit IVs keep the GCM collision probability under 2^-32 for up to
 * 2^32 messages per key version (NIST SP 800-38D §8.3): the service must rotate before a version
 * has sealed that many.
 */
export class Envelope {
  private readonly ivBatch: number;
  private ivs: Buffer = Buffer.alloc(0);
  private ivAt = 0;

  constructor(private readonly backend: Pick<KmsBackend, "encrypt" | "decrypt" | "random">, options: EnvelopeOptions = {}) {
    const batch = options.ivBatch ?? 256;
    if (!Number.isInteger(batch) || batch < 1 || batch > 4096) throw new RangeError("ivBatch must be an integer 1..4096");
    this.ivBatch = batch;
  }

  /**
   * Encrypts `plaintext` (1..4096 bytes) under the target version and returns blob v1.
   * Errors: KMS.2101 (plaintext length), KMS.0205/0308 (target), KMS.0208/0308 (context), the
   * backend's token errors.
   */
  seal(target: SealTarget, purpose: CiphertextPurpose, plaintext: Uint8Array, bound?: BoundContext): Buffer {
    if (!(plaintext instanceof Uint8Array) || plaintext.length < MIN_PLAINTEXT_BYTES || plaintext.length > MAX_PLAINTEXT_BYTES) {
      throw new KmsError("KMS.2101", `plaintext must be ${MIN_PLAINTEXT_BYTES}..${MAX_PLAINTEXT_BYTES} bytes`);
    }
    // The GCM additional data, header ‖ bound context, built in one buffer.
    const aad = encodeBoundContextAfter(HEADER_BYTES, purpose, bound);
    const iv = this.nextIv();
    writeHeader(aad, target.keyId, target.version, iv);
    const blob = Buffer.allocUnsafe(HEADER_BYTES + plaintext.length + GCM_TAG_BYTES);
    // Byte by byte: Buffer#copy of a part makes a view to copy from, which costs more than 35 stores.
    for (let i = 0; i < HEADER_BYTES; i++) blob[i] = aad[i]!;
    const body = blob.subarray(HEADER_BYTES);
    const sealed = this.backend.encrypt(target.key, iv, aad, plaintext, body);
    // A backend that returned its own Buffer instead of writing into `body` is still served.
    if (sealed.buffer !== body.buffer || sealed.byteOffset !== body.byteOffset) sealed.copy(body);
    return blob;
  }

  /**
   * Decrypts a blob: validates the caller's context (KMS.0208/0308), parses the blob, asks
   * `resolve` for the version it names, and opens it in the token. Every failure that the blob
   * can cause — malformed, unknown or foreign key, wrong version, purpose or context, any changed
   * bit — is the one opaque KMS.2201.
   */
  open(blob: Uint8Array, purpose: CiphertextPurpose, resolve: VersionResolver, bound?: BoundContext): OpenedBlob {
    // The caller's context is checked before anything of the blob.
    const aad = encodeBoundContextAfter(HEADER_BYTES, purpose, bound);
    const parsed = parseBlob(blob);
    const version = resolve({ keyId: parsed.keyId, version: parsed.version, iv: parsed.iv });
    if (version === undefined) throw invalid("the blob names no version available to the caller");
    return this.#decrypt(parsed, version, aad);
  }

  /**
   * open() for a blob the caller parsed already (parseBlob) and whose version it found: the Kms
   * parses first to learn the key to authorize. `binding` is bindForOpen's, made before the blob
   * was read. Same failures (KMS.2201).
   */
  openParsed(parsed: ParsedBlob, binding: OpenBinding, version: VersionRef): OpenedBlob {
    return this.#decrypt(parsed, version, binding.aad);
  }

  /** Opens with `aad` = room for the header ‖ the encoded bound context. */
  #decrypt(parsed: ParsedBlob, version: VersionRef, aad: Buffer): OpenedBlob {
    aad.set(parsed.header, 0);
    const plaintext = this.backend.decrypt(version, parsed.iv, aad, parsed.sealed);
    return { keyId: parsed.keyId, version: parsed.version, plaintext };
  }

  /** The next unused IV; refills from the token when the batch is spent. */
  private nextIv(): Buffer {
    if (this.ivAt >= this.ivs.length) {
      this.ivs = this.backend.random(GCM_IV_BYTES * this.ivBatch);
      this.ivAt = 0;
    }
    const iv = this.ivs.subarray(this.ivAt, this.ivAt + GCM_IV_BYTES);
    this.ivAt += GCM_IV_BYTES;
    return iv;
  }
}
