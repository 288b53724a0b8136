/**
 * One token object as a file: every attribute and the key material, sealed with AES-256-GCM
 * under the token's object key, the token and the handle bound as additional data.
 *
 * File layout (integers big-endian):
 *
 *   offset  size  field
 *   0       4     magic "HKOB"
 *   4       1     format version, 1
 *   5       16    token id (token.json "tokenId": this initialization of the token)
 *   21      8     object handle (u64)
 *   29      12    GCM IV, random per write
 *   41      n+16  GCM(objectKey, IV, AAD = bytes 0..41, payload) = ciphertext || 16-byte tag
 *
 * Payload (plaintext, only ever in memory):
 *
 *   u32 count, then count × { u32 type, u32 length, value }   every stored attribute (CKA_*)
 *   u8  material kind: 0 none, 1 secret, 2 private, 3 public
 *   u8  field count, then fields × { u32 length, bytes }:
 *         secret   AES-KWP(tokenKey, key)          — wrapped in the native core; the bytes of a
 *                                                    secret key never enter JavaScript
 *         private  PKCS#8 DER, SubjectPublicKeyInfo DER of its public key
 *         public   SubjectPublicKeyInfo DER
 *
 * Key separation: the object key is used only for AES-GCM, the token key only for AES-KWP (of
 * the object key, of secret keys, and — under PIN-derived keys — of itself). The handle in the
 * AAD means a file renamed to another handle, or moved to another token or to an earlier
 * initialization of this one, fails to open. GCM's 96-bit random IVs allow 2^32 writes per object
 * key (SP 800-38D §8.3); a new C_InitToken starts a new key.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { gcmOpen, gcmSeal } from "../../src/crypto/aead.js";
import type { KeyHandle } from "../../src/crypto/keys.js";
import { keyUnwrapKey, keyWrapKey } from "../../src/crypto/keywrap.js";
import { randomBytes } from "../../src/crypto/random.js";
import type { ObjectMaterial, P11Object } from "../objects/object.js";

export const OBJECT_MAGIC = Buffer.from("HKOB", "ascii");
export const OBJECT_VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;
export const HEADER_BYTES = 4 + 1 + 16 + 8 + IV_BYTES;

const KIND = { none: 0, secret: 1, private: 2, public: 3 } as const;

/** The keys a token's objects are sealed with. */
export interface ObjectKeys {
  /** Token id from token.json (16 bytes). */
  tokenId: Buffer;
  /** AES-256 for AES-GCM of object files. */
  objectKey: KeyHandle;
  /** AES-256 for AES-KWP of secret-key material. */
  tokenKey: KeyHandle;
}

/** Why a file did not open: it belongs elsewhere, or it is damaged or forged. */
export class ObjectFileError extends Error {
  constructor(readonly reason: "foreign" | "damaged", message: string) {
    super(message);
    this.name = "ObjectFileError";
  }
}

export interface ObjectHeader {
  tokenId: Buffer;
  handle: number;
}

/** The clear header of an object file, or null if it is not one. Nothing here is authenticated until openObject. */
export function readObjectHeader(file: Buffer): ObjectHeader | null {
  if (file.length < HEADER_BYTES + TAG_BYTES || !file.subarray(0, 4).equals(OBJECT_MAGIC) || file[4] !== OBJECT_VERSION) return null;
  const handle = file.readBigUInt64BE(21);
  if (handle > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  return { tokenId: Buffer.from(file.subarray(5, 21)), handle: Number(handle) };
}

class Writer {
  private readonly parts: Buffer[] = [];

  u8(value: number): void {
    this.parts.push(Buffer.from([value]));
  }
  u32(value: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(value);
    this.parts.push(b);
  }
  field(value: Buffer): void {
    this.u32(value.length);
    this.parts.push(value);
  }
  /** Concatenates, and wipes the parts (some hold private key DER). */
  finish(): Buffer {
    const out = Buffer.concat(this.parts);
    for (const part of this.parts) part.fill(0);
    return out;
  }
}

class Reader {
  private offset = 0;
  constructor(private readonly data: Buffer) {}

  private need(n: number): void {
    if (this.offset + n > this.data.length) throw new ObjectFileError("damaged", "payload is truncated");
  }
  u8(): number {
    this.need(1);
    return this.data[this.offset++]!;
  }
  u32(): number {
    this.need(4);
    const value = this.data.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }
  field(): Buffer {
    const length = this.u32();
    this.need(length);
    const value = this.data.subarray(this.offset, this.offset + length);
    this.offset += length;
    return value;
  }
  end(): void {
    if (this.offset !== this.data.length) throw new ObjectFileError("damaged", "payload has trailing bytes");
  }
}

function header(tokenId: Buffer, handle: number, iv: Buffer): Buffer {
  const out = Buffer.alloc(HEADER_BYTES);
  OBJECT_MAGIC.copy(out, 0);
  out[4] = OBJECT_VERSION;
  tokenId.copy(out, 5);
  out.writeBigUInt64BE(BigInt(handle), 21);
  iv.copy(out, 29);
  return out;
}

function writeMaterial(writer: Writer, material: ObjectMaterial, tokenKey: KeyHandle): void {
  switch (material.kind) {
    case "none":
      writer.u8(KIND.none);
      writer.u8(0);
      return;
    case "secret":
      writer.u8(KIND.secret);
      writer.u8(1);
      writer.field(keyWrapKey(tokenKey, "kwp", material.key));
      return;
    case "private":
      writer.u8(KIND.private);
      writer.u8(2);
      writer.field(material.key.export({ format: "der", type: "pkcs8" }));
      writer.field(material.publicKey.export({ format: "der", type: "spki" }));
      return;
    case "public":
      writer.u8(KIND.public);
      writer.u8(1);
      writer.field(material.key.export({ format: "der", type: "spki" }));
      return;
    default:
      throw new Error(`object material of kind ${(material as { kind: string }).kind} cannot be stored`);
  }
}

/** The file for `object` (a token object): header || GCM(payload). */
export function sealObject(object: P11Object, keys: ObjectKeys): Buffer {
  const writer = new Writer();
  const attributes = [...object.attrs].sort(([a], [b]) => a - b);
  writer.u32(attributes.length);
  for (const [type, value] of attributes) {
    writer.u32(type);
    writer.field(Buffer.from(value));
  }
  writeMaterial(writer, object.material, keys.tokenKey);
  const payload = writer.finish();
  try {
    const iv = randomBytes(IV_BYTES);
    const head = header(keys.tokenId, object.handle, iv);
    return Buffer.concat([head, gcmSeal(keys.objectKey, payload, { iv, aad: head, tagLength: TAG_BYTES })]);
  } finally {
    payload.fill(0);
  }
}

function readMaterial(reader: Reader, tokenKey: KeyHandle): ObjectMaterial {
  const kind = reader.u8();
  const count = reader.u8();
  const fields = Array.from({ length: count }, () => reader.field());
  const expect = (n: number): void => {
    if (count !== n) throw new ObjectFileError("damaged", `material of kind ${kind} has ${count} fields`);
  };
  switch (kind) {
    case KIND.none:
      expect(0);
      return { kind: "none" };
    case KIND.secret:
      expect(1);
      return { kind: "secret", key: keyUnwrapKey(tokenKey, "kwp", fields[0]!) };
    case KIND.private: {
      expect(2);
      const key: KeyObject = createPrivateKey({ key: fields[0]!, format: "der", type: "pkcs8" });
      return { kind: "private", key, publicKey: createPublicKey({ key: fields[1]!, format: "der", type: "spki" }) };
    }
    case KIND.public:
      expect(1);
      return { kind: "public", key: createPublicKey({ key: fields[0]!, format: "der", type: "spki" }) };
    default:
      throw new ObjectFileError("damaged", `unknown material kind ${kind}`);
  }
}

export interface OpenedObject {
  attrs: Map<number, Buffer>;
  material: ObjectMaterial;
}

/**
 * Opens an object file stored under `handle`. ObjectFileError "foreign" when it belongs to another
 * token or an earlier initialization, "damaged" when it is not an object file or fails the tag.
 */
export function openObject(file: Buffer, handle: number, keys: ObjectKeys): OpenedObject {
  const head = readObjectHeader(file);
  if (head === null) throw new ObjectFileError("damaged", "not an hsmkit object file");
  if (!head.tokenId.equals(keys.tokenId)) throw new ObjectFileError("foreign", "belongs to another initialization of the token");
  if (head.handle !== handle) throw new ObjectFileError("damaged", `holds handle ${head.handle}`);
  let payload: Buffer;
  try {
    payload = gcmOpen(keys.objectKey, file.subarray(HEADER_BYTES), {
      iv: file.subarray(29, HEADER_BYTES), aad: file.subarray(0, HEADER_BYTES), tagLength: TAG_BYTES,
    });
  } catch {
    throw new ObjectFileError("damaged", "fails authentication (altered, or sealed under another key)");
  }
  try {
    const reader = new Reader(payload);
    const attrs = new Map<number, Buffer>();
    const count = reader.u32();
    for (let i = 0; i < count; i++) {
      const type = reader.u32();
      attrs.set(type, Buffer.from(reader.field()));
    }
    const material = readMaterial(reader, keys.tokenKey);
    try {
      reader.end();
    } catch (error) {
      if (material.kind === "secret") material.key.destroy();
      throw error;
    }
    return { attrs, material };
  } catch (error) {
    if (error instanceof ObjectFileError) throw error;
    throw new ObjectFileError("damaged", `payload does not decode: ${(error as Error).message}`);
  } finally {
    payload.fill(0);
  }
}
