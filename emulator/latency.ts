/**
 * Latency: a profile of milliseconds added to PKCS#11 calls, to make an in-process token answer
 * as slowly as a network HSM does. Off unless an Emulator is given a profile.
 *
 * - Callback forms (`C_Sign(…, cb)`) and *Async forms wait on a timer: the event loop stays free,
 *   as it does while pkcs11js runs a real module's call on the libuv pool.
 * - Synchronous forms block the calling thread for the delay, as a synchronous call into a real
 *   module does. The wait is `Atomics.wait` on a private SharedArrayBuffer: it sleeps without
 *   spinning the CPU, and it blocks the event loop of that thread for its duration (timers,
 *   I/O and promise callbacks wait until the call returns). Keep synchronous delays small, or
 *   use the callback / Async forms, when other work shares the thread.
 *
 * Jitter draws from a seeded generator (mulberry32, see faults.ts): reproducible, not cryptographic.
 */
import { seededRandom } from "./faults.js";

export interface LatencyProfile {
  /** Milliseconds added to every C_ call not named in `calls` (default 0). */
  default?: number;
  /** Milliseconds for particular calls, by pkcs11js method name: { C_GenerateKeyPair: 150, C_Sign: 4 }. */
  calls?: Readonly<Record<string, number>>;
  /** Up to this many extra milliseconds, uniformly drawn per call (default 0). */
  jitter?: number;
  /** Seed of the jitter generator (default 1). */
  seed?: number;
}

function latencyError(message: string): TypeError {
  return new TypeError(`latency profile: ${message}`);
}

function milliseconds(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) throw latencyError(`${what} must be a non-negative number of milliseconds`);
  return value;
}

/** The delay each call gets. */
export class Latency {
  private readonly base: number;
  private readonly perCall: ReadonlyMap<string, number>;
  private readonly jitter: number;
  private readonly random: () => number;

  constructor(profile: LatencyProfile | number, methods: ReadonlySet<string>) {
    const p: LatencyProfile = typeof profile === "number" ? { default: profile } : profile;
    if (typeof p !== "object" || p === null) throw latencyError("expected a number or { default?, calls?, jitter?, seed? }");
    for (const key of Object.keys(p)) {
      if (!["default", "calls", "jitter", "seed"].includes(key)) throw latencyError(`unknown field "${key}"`);
    }
    this.base = p.default === undefined ? 0 : milliseconds(p.default, "default");
    const perCall = new Map<string, number>();
    for (const [name, ms] of Object.entries(p.calls ?? {})) {
      if (!methods.has(name)) throw latencyError(`the emulator has no method ${name}`);
      perCall.set(name, milliseconds(ms, `calls.${name}`));
    }
    this.perCall = perCall;
    this.jitter = p.jitter === undefined ? 0 : milliseconds(p.jitter, "jitter");
    const seed = p.seed ?? 1;
    if (!Number.isInteger(seed) || seed < 0) throw latencyError("seed must be a non-negative integer");
    this.random = seededRandom(seed);
  }

  /** Milliseconds to add to this call of `method`. */
  delay(method: string): number {
    const ms = this.perCall.get(method) ?? this.base;
    return this.jitter > 0 ? ms + this.random() * this.jitter : ms;
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Blocks the calling thread for `ms` milliseconds without spinning (Atomics.wait on a value nobody changes). */
export function sleepSync(ms: number): void {
  if (ms > 0) Atomics.wait(sleeper, 0, 0, ms);
}
