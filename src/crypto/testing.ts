/**
 * INSECURE, FOR TESTS ONLY. Deterministic random bytes and direct access to the bare CTR_DRBG
 * mechanism, so that tests can be reproducible and check the DRBG against NIST's known
 * answers; and a way to inject a broken entropy source into the process-wide generator.
 *
 * Nothing here may be used to make keys or any other secret: a deterministic generator's
 * output is exactly as secret as its seed, and these seeds are chosen by the test.
 */
import { createHash } from "node:crypto";

import { addon, type NativeCtrDrbgHandle } from "./addon.js";
import { argTypeError, argValueError, assertBytes, assertInteger } from "./errors.js";
import { ENTROPY_SOURCE_NAMES, type EntropySourceName } from "./random.js";

/** SP 800-90A max_number_of_bits_per_request for CTR_DRBG: 2^19 bits. */
export const CTR_DRBG_MAX_REQUEST_BYTES = 2 ** 16;

/** Parameters of a bare CTR_DRBG instance. */
export interface CtrDrbgOptions {
  /** AES key length in bytes: 16, 24 or 32. */
  keyLength: 16 | 24 | 32;
  /** Whether the derivation function (Block_Cipher_df, SP 800-90A §10.3.2) is used. */
  derivationFunction: boolean;
}

/**
 * INSECURE, FOR TESTS ONLY: the SP 800-90A CTR_DRBG mechanism (§10.2.1) fed with whatever
 * entropy the caller hands it. The Key and V live in native memory and are cleansed on
 * uninstantiate() and when the object is garbage-collected.
 */
export class InsecureCtrDrbgForTesting {
  readonly #drbg: NativeCtrDrbgHandle;

  /** Throws ERR_OUT_OF_RANGE / ERR_INVALID_ARG_TYPE for a key length other than 16, 24, 32. */
  constructor(options: CtrDrbgOptions) {
    if (typeof options !== "object" || options === null) throw argTypeError("options", "an object");
    const { keyLength, derivationFunction } = options;
    assertInteger(keyLength, "options.keyLength", 16, 32);
    if (keyLength % 8 !== 0) throw argValueError("options.keyLength", "must be 16, 24 or 32");
    if (typeof derivationFunction !== "boolean") throw argTypeError("options.derivationFunction", "a boolean");
    this.#drbg = new addon.CtrDrbg(keyLength, derivationFunction);
  }

  /**
   * Instantiate (§10.2.1.3). With the df: at least keyLength bytes of entropy, any nonce and
   * personalization string. Without: exactly keyLength + 16 bytes of entropy, no nonce, a
   * personalization string of at most keyLength + 16 bytes. Other lengths throw
   * ERR_NATIVE_INVALID_ARGUMENT.
   */
  instantiate(entropy: Uint8Array, nonce?: Uint8Array, personalization?: Uint8Array): void {
    assertBytes(entropy, "entropy");
    if (nonce !== undefined) assertBytes(nonce, "nonce");
    if (personalization !== undefined) assertBytes(personalization, "personalization");
    this.#drbg.instantiate(entropy, nonce ?? null, personalization ?? null);
  }

  /** Reseed (§10.2.1.4); entropy lengths as for instantiate. ERR_NATIVE_ENTROPY if not instantiated. */
  reseed(entropy: Uint8Array, additionalInput?: Uint8Array): void {
    assertBytes(entropy, "entropy");
    if (additionalInput !== undefined) assertBytes(additionalInput, "additionalInput");
    this.#drbg.reseed(entropy, additionalInput ?? null);
  }

  /**
   * Generate (§10.2.1.5): `length` bytes, at most 2^16 per request. An empty additional input is
   * the spec's Null. Throws ERR_NATIVE_ENTROPY when not instantiated or when the reseed counter
   * has passed reseedInterval (the spec's "reseed required").
   */
  generate(length: number, additionalInput?: Uint8Array): Buffer {
    assertInteger(length, "length", 0, CTR_DRBG_MAX_REQUEST_BYTES);
    if (additionalInput !== undefined) assertBytes(additionalInput, "additionalInput");
    const out = Buffer.alloc(length);
    this.#drbg.generate(out, additionalInput ?? null);
    return out;
  }

  /** Zeroises the working state; later generate/reseed calls throw ERR_NATIVE_ENTROPY. */
  uninstantiate(): void {
    this.#drbg.uninstantiate();
  }

  /** The spec's reseed_counter: 1 after instantiate or reseed, +1 per generate; 0 when not instantiated. */
  get reseedCounter(): number {
    return this.#drbg.reseedCounter;
  }

  get instantiated(): boolean {
    return this.#drbg.instantiated;
  }

  /** reseed_interval, 1 to 2^48 (the default). */
  get reseedInterval(): number {
    return this.#drbg.reseedInterval;
  }

  set reseedInterval(value: number) {
    assertInteger(value, "reseedInterval", 1, 2 ** 48);
    this.#drbg.reseedInterval = value;
  }
}

/**
 * INSECURE, FOR TESTS ONLY: a deterministic byte stream derived from `seed`. The same seed gives
 * the same bytes on every run and platform: entropy = SHA-256("hsmkit testing entropy" || seed),
 * nonce = the first 16 bytes of SHA-256("hsmkit testing nonce" || seed), into an AES-256
 * CTR_DRBG with the derivation function; each call returns the next `length` bytes (requests
 * over 64 KiB are split).
 */
export function insecureDeterministicRandomForTesting(seed: string | Uint8Array): (length: number) => Buffer {
  if (typeof seed !== "string" && !(seed instanceof Uint8Array)) throw argTypeError("seed", "a string or Uint8Array");
  const material = typeof seed === "string" ? Buffer.from(seed, "utf8") : seed;
  const entropy = createHash("sha256").update("hsmkit testing entropy").update(material).digest();
  const nonce = createHash("sha256").update("hsmkit testing nonce").update(material).digest().subarray(0, 16);
  const drbg = new InsecureCtrDrbgForTesting({ keyLength: 32, derivationFunction: true });
  drbg.instantiate(entropy, nonce);
  return (length: number): Buffer => {
    assertInteger(length, "length", 0, 2 ** 31 - 1);
    const parts: Buffer[] = [];
    for (let done = 0; done < length; done += CTR_DRBG_MAX_REQUEST_BYTES) {
      parts.push(drbg.generate(Math.min(CTR_DRBG_MAX_REQUEST_BYTES, length - done)));
    }
    return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, length);
  };
}

/**
 * INSECURE, FOR TESTS ONLY: puts a source that cycles `pattern` in front of the process-wide
 * generator's entropy sources, followed only by the real sources listed in `then` (default: none),
 * and drops the current seed. A stuck pattern (one repeated byte) or a biased one must trip the
 * health tests and the draw move on to `then`; any other pattern would seed the generator with
 * predictable bytes. Affects every thread of the process. Restore with
 * `configureRandom({ sources: [...] })` from ./random.js.
 */
export function insecureUseReplayEntropySourceForTesting(
  pattern: Uint8Array,
  options: { then?: readonly EntropySourceName[] } = {},
): void {
  assertBytes(pattern, "pattern");
  if (pattern.length === 0) throw argValueError("pattern", "must not be empty");
  const then = options.then ?? [];
  if (!Array.isArray(then)) throw argTypeError("options.then", "an array of entropy source names");
  for (const [i, name] of then.entries()) {
    if (!(ENTROPY_SOURCE_NAMES as readonly string[]).includes(name)) {
      throw argValueError("options.then", `names an unknown entropy source "${String(name)}"`);
    }
    if (then.indexOf(name) !== i) throw argValueError("options.then", `lists "${name}" twice`);
  }
  addon.randomUseReplaySourceForTesting(pattern, [...then]);
}
