/**
 * The only module that loads the native addon. Everything else imports the typed
 * wrappers beside this file (aead.ts, keywrap.ts, keys.ts, modes.ts, hmac.ts, random.ts), never the addon.
 */
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** An opaque handle to key bytes held in native, locked memory. */
export interface NativeKeyHandle {
  readonly length: number;
  readonly destroyed: boolean;
  destroy(): void;
  exportBytes(): Buffer;
}

export interface RandomSourceStatusBinding {
  name: string;
  hardware: boolean;
  available: boolean;
  inService: boolean;
  failure: string | null;
  bytesDrawn: number;
  retries: number;
  fallbacks: number;
  healthFailures: number;
  /** Claimed min-entropy H per 8-bit sample, the basis of the health-test cutoffs. */
  minEntropy: number;
  /** Bits of entropy credited per byte toward a DRBG seed. */
  seedCredit: number;
  rctCutoff: number;
  aptCutoff: number;
}

export interface RandomStatusBinding {
  activeSource: string | null;
  hardware: boolean;
  seeded: boolean;
  predictionResistance: boolean;
  reseedInterval: number;
  instantiations: number;
  reseeds: number;
  generateCalls: number;
  bytesGenerated: number;
  healthFailures: number;
  sourceOrder: string[];
  configurationError: string | null;
  sources: RandomSourceStatusBinding[];
}

export interface NativeCtrDrbgHandle {
  instantiate(entropy: Uint8Array, nonce: Uint8Array | null, personalization: Uint8Array | null): void;
  reseed(entropy: Uint8Array, additional: Uint8Array | null): void;
  generate(out: Uint8Array, additional: Uint8Array | null): void;
  uninstantiate(): void;
  readonly reseedCounter: number;
  readonly instantiated: boolean;
  reseedInterval: number;
}

/** A multi-part AES-ECB/CBC/CBC-PAD/CTR operation (native/binding/block_modes.cc). */
export interface NativeAesOperationHandle {
  update(data: Uint8Array, out: Uint8Array): number;
  final(out: Uint8Array): number;
  outputSize(inLength: number): number;
  finalOutputSize(): number;
  abort(): void;
  readonly ended: boolean;
}

/** A multi-part HMAC sign or verify (native/binding/mac.cc). */
export interface NativeHmacOperationHandle {
  update(data: Uint8Array): void;
  sign(out: Uint8Array): number;
  verify(tag: Uint8Array): boolean;
  abort(): void;
  readonly tagLength: number;
  readonly ended: boolean;
}

/** The addon's exports, exactly as native/binding/*.cc registers them. */
export interface NativeAddon {
  opensslVersion(): { compiledAgainst: string; runtime: string };
  mallocArenaMax(count: number): boolean;

  // keys (native/binding/keys.cc)
  importKey(bytes: Uint8Array): NativeKeyHandle;
  generateKey(length: number): NativeKeyHandle;
  secureMemoryStats(): { bytesInUse: number; bytesReserved: number; locked: boolean };

  // aead (native/binding/aead.cc)
  gcmSeal(key: NativeKeyHandle, iv: Uint8Array, aad: Uint8Array | null, plaintext: Uint8Array, tagLength: number, out: Uint8Array): number;
  gcmOpen(key: NativeKeyHandle, iv: Uint8Array, aad: Uint8Array | null, sealed: Uint8Array, tagLength: number, out: Uint8Array): number;
  gcmSealBatch(
    key: NativeKeyHandle, ivs: Uint8Array, ivLength: number, aads: Uint8Array | null, aadLengths: Uint32Array | null,
    data: Uint8Array, lengths: Uint32Array, tagLength: number, out: Uint8Array,
  ): number;
  gcmOpenBatch(
    key: NativeKeyHandle, ivs: Uint8Array, ivLength: number, aads: Uint8Array | null, aadLengths: Uint32Array | null,
    data: Uint8Array, lengths: Uint32Array, tagLength: number, out: Uint8Array, ok: Uint8Array,
  ): number;
  gcmSealAsync(key: NativeKeyHandle, iv: Uint8Array, aad: Uint8Array | null, plaintext: Uint8Array, tagLength: number, out: Uint8Array): Promise<number>;
  gcmOpenAsync(key: NativeKeyHandle, iv: Uint8Array, aad: Uint8Array | null, sealed: Uint8Array, tagLength: number, out: Uint8Array): Promise<number>;
  gcmSealCeiling(key: NativeKeyHandle, messageLength: number, iterations: number): number;

  // key wrap (native/binding/keywrap.cc)
  keyWrap(kek: NativeKeyHandle, padded: boolean, data: Uint8Array, out: Uint8Array): number;
  keyUnwrap(kek: NativeKeyHandle, padded: boolean, wrapped: Uint8Array, out: Uint8Array): number;
  keyWrapKey(kek: NativeKeyHandle, padded: boolean, key: NativeKeyHandle, out: Uint8Array): number;
  keyUnwrapKey(kek: NativeKeyHandle, padded: boolean, wrapped: Uint8Array): NativeKeyHandle;

  // raw-digest signatures (native/binding/pkey.cc)
  ecdsaSignDigest(pkcs8: Uint8Array, digest: Uint8Array): Buffer;
  ecdsaVerifyDigest(spki: Uint8Array, digest: Uint8Array, signature: Uint8Array): boolean;
  generateKeyPairPkcs8(kind: "RSA" | "EC" | "ED25519", param: string, exponent: Uint8Array | null): Buffer;

  // random (native/binding/random.cc)
  randomFill(out: Uint8Array, additional: Uint8Array | null): void;
  randomReseed(additional: Uint8Array | null): void;
  randomStatus(): RandomStatusBinding;
  randomConfigure(sources: string[], predictionResistance: boolean, reseedInterval: number): void;
  randomUseReplaySourceForTesting(pattern: Uint8Array, then: string[]): void;
  CtrDrbg: new (keyLength: number, useDerivationFunction: boolean) => NativeCtrDrbgHandle;

  // AES block modes (native/binding/block_modes.cc); mode 0 ECB, 1 CBC, 2 CBC-PAD, 3 CTR
  aesOutputSize(mode: number, encrypt: boolean, inLength: number): number;
  aesCrypt(
    key: NativeKeyHandle, mode: number, encrypt: boolean, iv: Uint8Array | null, counterBits: number,
    data: Uint8Array, out: Uint8Array,
  ): number;
  AesOperation: new (
    key: NativeKeyHandle, mode: number, encrypt: boolean, iv: Uint8Array | null, counterBits: number,
  ) => NativeAesOperationHandle;

  // HMAC (native/binding/mac.cc); hash 0 SHA-1, 1 SHA-224, 2 SHA-256, 3 SHA-384, 4 SHA-512
  hmacSign(key: NativeKeyHandle, hash: number, data: Uint8Array, tagLength: number, out: Uint8Array): number;
  hmacVerify(key: NativeKeyHandle, hash: number, data: Uint8Array, tag: Uint8Array, tagLength: number): boolean;
  HmacOperation: new (key: NativeKeyHandle, hash: number, tagLength: number) => NativeHmacOperationHandle;

  // The audit chain (native/binding/audit_chain.cc)
  auditChain(previous: Uint8Array, framed: Uint8Array, count: number, firstSeq: number, bodiesOut: Uint8Array, hashesOut: Uint8Array): number;
  auditFrame(fields: Uint32Array, times: Float64Array, strs: Uint8Array, offsets: Uint32Array, count: number): Buffer;
}

const packageRoot = findPackageRoot(dirname(fileURLToPath(import.meta.url)));

function findPackageRoot(start: string): string {
  let dir = start;
  for (;;) {
    if (existsSync(join(dir, "binding.gyp"))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return start;
    dir = parent;
  }
}

function load(): NativeAddon {
  const require = createRequire(import.meta.url);
  const candidates = [
    join(packageRoot, "build", "Release", "hsmkit.node"),
    join(packageRoot, "build", "Debug", "hsmkit.node"),
  ];
  const override = process.env["HSMKIT_ADDON_PATH"];
  if (override) candidates.unshift(override);
  const found = candidates.find((path) => existsSync(path));
  if (found === undefined) {
    throw new Error(
      "hsmkit: the native addon is not built (looked for " + candidates.join(", ") + "). " +
        "It needs a C++17 compiler, make, python3 and Node's headers (Debian: apt-get install -y g++ make python3; " +
        "Node from nodesource ships its headers in /usr/include/node), then `npm rebuild hsmkit` " +
        "(in a checkout of hsmkit: `npm rebuild`), which runs node-gyp against Node's own headers and OpenSSL. " +
        "Offline, set npm_config_nodedir=/usr so node-gyp does not try to download headers.",
    );
  }
  return require(found) as NativeAddon;
}

export const addon: NativeAddon = load();
