/**
 * The process-wide random generator of the native core: an SP 800-90A CTR_DRBG (AES-256 with the
 * derivation function) seeded from hardware entropy sources behind SP 800-90B health tests.
 *
 * - Sources, tried in the configured order: RDSEED, RDRAND, /dev/hwrng, getrandom(2) (the OS; not
 *   a hardware source). A source that fails a health test is out of service for the rest of the
 *   process and the failure is visible in {@link randomStatus}; the next source takes over.
 * - Without a healthy source the generator refuses: every call throws an Error with code
 *   `ERR_NATIVE_ENTROPY`. It never returns output that is not backed by a healthy seed.
 * - One generator per process, shared by all worker threads (the native addon is loaded once).
 *   Configuration changes therefore affect every thread.
 *
 * The default order can be set before first use with the environment variable
 * `HSMKIT_ENTROPY_SOURCES` (comma-separated, e.g. `rdrand,getrandom`).
 */
import { constants as bufferConstants } from "node:buffer";

import { addon, type RandomSourceStatusBinding, type RandomStatusBinding } from "./addon.js";
import { argTypeError, argValueError, assertBytes, assertInteger } from "./errors.js";

/** The real entropy sources, in the default order (strongest hardware source first). */
export const ENTROPY_SOURCE_NAMES = ["rdseed", "rdrand", "hwrng", "getrandom"] as const;

/** A real entropy source. */
export type EntropySourceName = (typeof ENTROPY_SOURCE_NAMES)[number];

/** Default reseed interval, in SP 800-90A generate requests of at most 64 KiB each (OpenSSL 3 uses the same). */
export const DEFAULT_RESEED_INTERVAL = 2 ** 16;

/** The largest reseed interval SP 800-90A allows for CTR_DRBG (Table 3): 2^48 requests. */
export const MAX_RESEED_INTERVAL = 2 ** 48;

/** One entropy source as the generator sees it. */
export interface RandomSourceStatus {
  /** A real source, or "replay" (tests only). */
  readonly name: EntropySourceName | "replay";
  readonly hardware: boolean;
  /** Probed once at start: the CPU instruction exists, the device opened, the syscall works. */
  readonly available: boolean;
  /** False once the source failed; it stays out of service for the rest of the process. */
  readonly inService: boolean;
  /** Why the source was taken out of service; null while in service. */
  readonly failure: string | null;
  /** Raw bytes read from the source, including discarded start-up test samples. */
  readonly bytesDrawn: number;
  /** RDSEED/RDRAND attempts that returned no data and were retried. */
  readonly retries: number;
  /** Draws this source could not finish (RDSEED contention), finished by the next source. */
  readonly fallbacks: number;
  /** SP 800-90B health-test failures (0 or 1: the first takes the source out of service). */
  readonly healthFailures: number;
  /** Claimed min-entropy H per 8-bit sample; the health-test cutoffs are derived from it. */
  readonly minEntropy: number;
  /** Bits of entropy credited per byte of output toward a seed. */
  readonly seedCredit: number;
  /** Repetition Count Test cutoff (SP 800-90B §4.4.1). */
  readonly rctCutoff: number;
  /** Adaptive Proportion Test cutoff for a 512-sample window (SP 800-90B §4.4.2). */
  readonly aptCutoff: number;
}

/** The generator's state. Counters cover the whole process (all threads) since it started. */
export interface RandomStatus {
  /** The source the next seed draw starts with; null when none is available and in service. */
  readonly activeSource: EntropySourceName | "replay" | null;
  /** Whether the active source is a hardware source. */
  readonly hardware: boolean;
  /** Whether the DRBG currently holds a seed (it is seeded lazily, on first use). */
  readonly seeded: boolean;
  readonly predictionResistance: boolean;
  readonly reseedInterval: number;
  readonly instantiations: number;
  readonly reseeds: number;
  readonly generateCalls: number;
  readonly bytesGenerated: number;
  /** Health-test failures over the life of the process. */
  readonly healthFailures: number;
  /** The configured order (or ["replay"] while a test replay source is installed). */
  readonly sourceOrder: readonly (EntropySourceName | "replay")[];
  /** An invalid HSMKIT_ENTROPY_SOURCES value; null when there is none. */
  readonly configurationError: string | null;
  readonly sources: readonly RandomSourceStatus[];
}

/** What {@link configureRandom} changes; omitted fields keep their current values. */
export interface RandomConfiguration {
  /** A non-empty list of distinct sources, tried in this order. */
  sources?: readonly EntropySourceName[];
  /** Reseed from the entropy source before every generate request, each 64 KiB of a call (SP 800-90A §9.3.1). Slower; default false. */
  predictionResistance?: boolean;
  /** Generate requests (each at most 64 KiB) between reseeds, 1 to 2^48. Default 2^16. */
  reseedInterval?: number;
}

function toBytes(value: ArrayBufferView, name: string): Uint8Array {
  if (!ArrayBuffer.isView(value)) throw argTypeError(name, "a Buffer, TypedArray or DataView");
  return value instanceof Uint8Array ? value : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
}

function optionalBytes(value: Uint8Array | undefined, name: string): Uint8Array | null {
  if (value === undefined) return null;
  assertBytes(value, name);
  return value;
}

/**
 * Returns `size` bytes (0 to buffer.constants.MAX_LENGTH) from the generator.
 * Throws RangeError/TypeError (`ERR_OUT_OF_RANGE`, `ERR_INVALID_ARG_TYPE`) for a bad size, and an
 * Error with code `ERR_NATIVE_ENTROPY` when no healthy entropy source can seed the generator.
 */
export function randomBytes(size: number): Buffer {
  assertInteger(size, "size", 0, bufferConstants.MAX_LENGTH);
  const out = Buffer.allocUnsafe(size);
  addon.randomFill(out, null);
  return out;
}

/**
 * Fills the whole of `buffer` (any TypedArray, DataView or Buffer) with generator output and
 * returns it. `additionalInput`, if given, is SP 800-90A additional input: mixed into this
 * request, not secret, any length up to 2^32 - 1 bytes. On `ERR_NATIVE_ENTROPY` the buffer is
 * left zeroed.
 */
export function randomFill<T extends ArrayBufferView>(buffer: T, additionalInput?: Uint8Array): T {
  const bytes = toBytes(buffer, "buffer");
  addon.randomFill(bytes, optionalBytes(additionalInput, "additionalInput"));
  return buffer;
}

/**
 * Reseeds the generator now from the entropy sources (instantiating it if it is not seeded),
 * mixing in `additionalInput` if given. Throws `ERR_NATIVE_ENTROPY` when no healthy source can
 * supply the seed; the generator is then unseeded and refuses output until a source recovers
 * it (after {@link configureRandom}, say).
 */
export function reseed(additionalInput?: Uint8Array): void {
  addon.randomReseed(optionalBytes(additionalInput, "additionalInput"));
}

function sourceStatus(source: RandomSourceStatusBinding): RandomSourceStatus {
  return Object.freeze({ ...source, name: source.name as RandomSourceStatus["name"] });
}

/** A snapshot of the generator's state: active source, seed state, counters and each source's health. */
export function randomStatus(): RandomStatus {
  const status: RandomStatusBinding = addon.randomStatus();
  return Object.freeze({
    ...status,
    activeSource: status.activeSource as RandomStatus["activeSource"],
    sourceOrder: Object.freeze(status.sourceOrder as RandomStatus["sourceOrder"][number][]),
    sources: Object.freeze(status.sources.map(sourceStatus)),
  });
}

function checkSources(value: unknown): EntropySourceName[] {
  if (!Array.isArray(value)) throw argTypeError("sources", "an array of entropy source names");
  if (value.length === 0) throw argValueError("sources", "must name at least one entropy source");
  const seen = new Set<string>();
  for (const name of value as unknown[]) {
    if (typeof name !== "string") throw argTypeError("sources", "an array of entropy source names");
    if (!(ENTROPY_SOURCE_NAMES as readonly string[]).includes(name)) {
      throw argValueError("sources", `names an unknown entropy source "${name}" (expected one of ${ENTROPY_SOURCE_NAMES.join(", ")})`);
    }
    if (seen.has(name)) throw argValueError("sources", `lists "${name}" twice`);
    seen.add(name);
  }
  return value as EntropySourceName[];
}

/**
 * Changes the generator's configuration for the whole process and returns the new status.
 * Changing the source order drops the current seed: the next call seeds from the new order.
 * Sources already out of service stay out of service. Also clears an invalid
 * HSMKIT_ENTROPY_SOURCES setting. Throws TypeError/RangeError (`ERR_INVALID_ARG_TYPE`,
 * `ERR_INVALID_ARG_VALUE`, `ERR_OUT_OF_RANGE`) before anything changes.
 */
export function configureRandom(configuration: RandomConfiguration): RandomStatus {
  if (typeof configuration !== "object" || configuration === null) {
    throw argTypeError("configuration", "an object");
  }
  const current = addon.randomStatus();
  let sources: string[] = current.sourceOrder.filter((name) => name !== "replay");
  if (configuration.sources !== undefined) {
    sources = checkSources(configuration.sources);
  } else if (sources.length === 0) {
    // A replay source was installed by a test and no order is given: go back to the default.
    sources = [...ENTROPY_SOURCE_NAMES];
  }
  const predictionResistance = configuration.predictionResistance ?? current.predictionResistance;
  if (typeof predictionResistance !== "boolean") throw argTypeError("predictionResistance", "a boolean");
  const reseedInterval = configuration.reseedInterval ?? current.reseedInterval;
  assertInteger(reseedInterval, "reseedInterval", 1, MAX_RESEED_INTERVAL);
  addon.randomConfigure([...sources], predictionResistance, reseedInterval);
  return randomStatus();
}
