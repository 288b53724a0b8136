/**
 * Fault injection: a plan of rules that makes chosen PKCS#11 calls fail with chosen CKR codes,
 * drops sessions, or pulls the token out of its slot and puts it back — so an application's
 * error handling can be exercised without hardware. Off unless an Emulator is given a plan.
 *
 * A rule watches calls by their pkcs11js method name. "C_Encrypt" covers every form of that
 * call: `C_Encrypt(…)`, `C_Encrypt(…, cb)` and `C_EncryptAsync(…)`; "*" covers every C_ call.
 * Each rule counts the calls it watches and, once past `after` of them, fires on each further
 * one — always, or with probability `probability` drawn from a seeded generator — at most
 * `times` times. Firing does the rule's `effect` first (closeSessions, removeToken,
 * insertToken), then fails the call with `fail` if the rule names a code; a rule without `fail`
 * lets the call run against the changed token (where, say, a session call after removeToken
 * answers CKR_DEVICE_REMOVED as a real device's would).
 *
 * Rules are checked in plan order and every rule counts every call it watches; the first rule
 * that fails the call ends the check (later rules neither fire nor count that call).
 *
 * The decision is made when the call is made (so callback and promise forms fire in call
 * order); effects and the failure happen when the call runs.
 *
 * The generator behind `probability` (mulberry32, one stream per rule from the plan's seed) only
 * makes fault selection reproducible. It is not cryptographic and touches no key or random output.
 */
import { readFileSync } from "node:fs";
import { CkrError } from "./errors.js";
import { CKR_ACTION_PROHIBITED, CKR_CURVE_NOT_SUPPORTED } from "./extra-constants.js";
import { pkcs11 } from "./pkcs11.js";
import type { Slot } from "./slot.js";
import type { ModuleState } from "./state.js";

/** What a rule does to the token when it fires, before failing the call (if it names a code). */
export type FaultEffect =
  /** Closes the sessions of the rule's slots: their handles become invalid, logins end, session objects go. */
  | "closeSessions"
  /** Takes the token out: slot flags lose CKF_TOKEN_PRESENT, token calls answer CKR_TOKEN_NOT_PRESENT, its sessions CKR_DEVICE_REMOVED. */
  | "removeToken"
  /** Puts a removed token back, with none of its old sessions and nobody logged in. */
  | "insertToken";

export const FAULT_EFFECTS: readonly FaultEffect[] = ["closeSessions", "removeToken", "insertToken"];

/** One rule of a plan. Plain data, so a plan can be a JSON file. */
export interface FaultRule {
  /** pkcs11js method names ("C_Sign"; covers the callback and *Async forms too) or "*" for every C_ call. */
  calls: string | readonly string[];
  /** The CKR the call fails with: a name ("CKR_DEVICE_ERROR") or a number. */
  fail?: string | number;
  /** Done before the call fails or runs. */
  effect?: FaultEffect;
  /** Slot ids the effect applies to (default: every slot). */
  slots?: readonly number[];
  /** Let this many watched calls through before firing (default 0: fire from the first). */
  after?: number;
  /** Fire on each eligible call with this probability, 0 < p ≤ 1 (default 1), from the plan's seeded generator. */
  probability?: number;
  /** Fire at most this many times (default: no limit). */
  times?: number;
}

export interface FaultPlan {
  /** Seed of the generator behind `probability` (default 1). The same seed and calls give the same faults. */
  seed?: number;
  rules: readonly FaultRule[];
}

/** A fault that fired, for tests and logs. */
export interface FaultEvent {
  /** Position of the call among all calls the injector saw (1-based). */
  call: number;
  method: string;
  /** Index of the rule in the plan. */
  rule: number;
  effect?: FaultEffect;
  /** The CKR the call failed with, if the rule failed it. */
  rv?: number;
}

/** A rule after validation, with its counters. */
interface ActiveRule {
  readonly index: number;
  readonly calls: ReadonlySet<string> | "*";
  readonly rv: number | undefined;
  readonly effect: FaultEffect | undefined;
  readonly slots: readonly number[] | undefined;
  readonly after: number;
  readonly probability: number;
  readonly times: number;
  readonly random: () => number;
  seen: number;
  fired: number;
}

/** What the injector decided for one call: run `apply` when the call runs (it may throw the fault). */
export interface FaultDecision {
  apply(): void;
}

const NO_FAULT: FaultDecision = { apply() {} };

/**
 * mulberry32: a 32-bit state, period 2^32 generator with good statistical quality for its size.
 * Deterministic fault selection only — never use it for anything secret.
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296;
  };
}

/** Derives the seed of stream `index` from a plan seed (splitmix32-style mixing), so rules do not share a stream. */
export function streamSeed(seed: number, index: number): number {
  let z = (Math.imul(seed >>> 0, 0x9e3779b1) + Math.imul(index + 1, 0x85ebca6b)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x7feb352d) >>> 0;
  z = Math.imul(z ^ (z >>> 15), 0x846ca68b) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

/** CKR codes pkcs11js knows, plus the v2.40 ones it lacks, by name. */
function rvByName(name: string): number | undefined {
  const extras: Record<string, number> = { CKR_ACTION_PROHIBITED, CKR_CURVE_NOT_SUPPORTED };
  const value = name in extras ? extras[name] : (pkcs11 as unknown as Record<string, unknown>)[name];
  return typeof value === "number" && name.startsWith("CKR_") ? value : undefined;
}

function planError(message: string): TypeError {
  return new TypeError(`fault plan: ${message}`);
}

function nonNegativeInteger(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0) throw planError(`${what} must be a non-negative integer`);
  return value;
}

/** Reads a plan from a JSON file ({ "seed": 7, "rules": [ … ] }). */
export function loadFaultPlan(path: string): FaultPlan {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw planError(`cannot read ${path}: ${(error as Error).message}`);
  }
  return parsed as FaultPlan;
}

const RULE_KEYS = new Set(["calls", "fail", "effect", "slots", "after", "probability", "times"]);

/**
 * Applies a fault plan to one emulator. Create one yourself and pass it as the Emulator's
 * `faults` option to keep a handle on it: {@link FaultInjector.events} lists what fired, and
 * {@link FaultInjector.removeToken} / {@link FaultInjector.insertToken} / {@link FaultInjector.closeSessions}
 * act at once, outside any rule (e.g. between two steps of a test).
 */
export class FaultInjector {
  /** Every fault that fired, in order. */
  readonly events: FaultEvent[] = [];
  private readonly rules: ActiveRule[];
  private state: ModuleState | undefined;
  private callCount = 0;

  constructor(plan: FaultPlan | string) {
    const source = typeof plan === "string" ? loadFaultPlan(plan) : plan;
    if (typeof source !== "object" || source === null || !Array.isArray(source.rules)) throw planError("expected { seed?, rules: [...] }");
    for (const key of Object.keys(source)) if (key !== "seed" && key !== "rules") throw planError(`unknown field "${key}"`);
    const seed = source.seed === undefined ? 1 : nonNegativeInteger(source.seed, "seed");
    this.rules = source.rules.map((rule, index) => this.validate(rule, index, seed));
  }

  private validate(rule: FaultRule, index: number, seed: number): ActiveRule {
    const where = `rule ${index}`;
    if (typeof rule !== "object" || rule === null) throw planError(`${where} must be an object`);
    for (const key of Object.keys(rule)) if (!RULE_KEYS.has(key)) throw planError(`${where}: unknown field "${key}"`);
    const names = typeof rule.calls === "string" ? [rule.calls] : rule.calls;
    if (!Array.isArray(names) || names.length === 0 || !names.every((n) => typeof n === "string")) {
      throw planError(`${where}: calls must be a method name or a list of them`);
    }
    for (const name of names) {
      if (name !== "*" && !/^C_[A-Za-z]+$/.test(name)) throw planError(`${where}: "${name}" is not a C_ method name (or "*")`);
      if (name.endsWith("Async")) throw planError(`${where}: name the call ("${name.slice(0, -5)}"), which covers its Async form`);
    }
    let rv: number | undefined;
    if (rule.fail !== undefined) {
      rv = typeof rule.fail === "number" ? rule.fail : rvByName(rule.fail);
      if (rv === undefined || !Number.isInteger(rv) || rv < 0) throw planError(`${where}: unknown CKR code ${JSON.stringify(rule.fail)}`);
      if (rv === pkcs11.CKR_OK) throw planError(`${where}: CKR_OK is not a fault`);
    }
    if (rule.effect !== undefined && !FAULT_EFFECTS.includes(rule.effect)) {
      throw planError(`${where}: effect must be one of ${FAULT_EFFECTS.join(", ")}`);
    }
    if (rv === undefined && rule.effect === undefined) throw planError(`${where}: give "fail", "effect" or both`);
    if (rule.slots !== undefined && (!Array.isArray(rule.slots) || !rule.slots.every((s) => Number.isInteger(s) && s >= 0))) {
      throw planError(`${where}: slots must be a list of slot ids`);
    }
    const probability = rule.probability ?? 1;
    if (typeof probability !== "number" || !(probability > 0 && probability <= 1)) throw planError(`${where}: probability must be in (0, 1]`);
    return {
      index,
      calls: names.includes("*") ? "*" : new Set(names),
      rv,
      effect: rule.effect,
      slots: rule.slots,
      after: rule.after === undefined ? 0 : nonNegativeInteger(rule.after, `${where}: after`),
      probability,
      times: rule.times === undefined ? Infinity : nonNegativeInteger(rule.times, `${where}: times`),
      random: seededRandom(streamSeed(seed, index)),
      seen: 0,
      fired: 0,
    };
  }

  /** Binds the injector to an emulator's state (done by the Emulator constructor; once). */
  attach(state: ModuleState, methods: ReadonlySet<string>): void {
    if (this.state !== undefined) throw new Error("fault plan: this FaultInjector already belongs to an Emulator");
    for (const rule of this.rules) {
      if (rule.calls === "*") continue;
      for (const name of rule.calls) {
        if (!methods.has(name)) throw planError(`rule ${rule.index}: the emulator has no method ${name}`);
      }
    }
    for (const rule of this.rules) {
      for (const id of rule.slots ?? []) {
        if (!state.slots.some((s) => s.id === id)) throw planError(`rule ${rule.index}: no slot ${id}`);
      }
    }
    this.state = state;
  }

  /** Decides, as `method` is called, whether a rule fires; the returned decision acts when the call runs. */
  decide(method: string): FaultDecision {
    const call = ++this.callCount;
    const fired: ActiveRule[] = [];
    for (const rule of this.rules) {
      if (rule.calls !== "*" && !rule.calls.has(method)) continue;
      rule.seen++;
      if (rule.seen <= rule.after || rule.fired >= rule.times) continue;
      // Draw only for probabilistic rules, so adding a certain rule never shifts another's stream.
      if (rule.probability < 1 && rule.random() >= rule.probability) continue;
      rule.fired++;
      fired.push(rule);
      if (rule.rv !== undefined) break;
    }
    if (fired.length === 0) return NO_FAULT;
    return {
      apply: () => {
        for (const rule of fired) {
          if (rule.effect !== undefined) this.effect(rule.effect, rule.slots);
          const event: FaultEvent = { call, method, rule: rule.index };
          if (rule.effect !== undefined) event.effect = rule.effect;
          if (rule.rv !== undefined) event.rv = rule.rv;
          this.events.push(event);
          if (rule.rv !== undefined) throw new CkrError(rule.rv, `injected by fault plan rule ${rule.index}`);
        }
      },
    };
  }

  private attached(): ModuleState {
    if (this.state === undefined) throw new Error("fault plan: pass this FaultInjector to an Emulator first");
    return this.state;
  }

  private effect(effect: FaultEffect, slots: readonly number[] | undefined): void {
    if (effect === "closeSessions") this.closeSessions(slots);
    else if (effect === "removeToken") this.removeToken(slots);
    else this.insertToken(slots);
  }

  private targets(ids: number | readonly number[] | undefined): Slot[] {
    const state = this.attached();
    if (ids === undefined) return state.slots;
    const wanted = typeof ids === "number" ? [ids] : ids;
    return wanted.map((id) => {
      const slot = state.slots.find((s) => s.id === id);
      if (slot === undefined) throw new RangeError(`fault plan: no slot ${id}`);
      return slot;
    });
  }

  /** Closes every session of the slots (default: all), as if the device had dropped them. */
  closeSessions(slots?: number | readonly number[]): void {
    const state = this.attached();
    for (const slot of this.targets(slots)) for (const session of state.sessionsOf(slot)) state.closeSession(session);
  }

  /**
   * Takes the tokens of the slots (default: all) out. Their sessions stay open but answer
   * CKR_DEVICE_REMOVED; C_GetTokenInfo, C_OpenSession and the like answer CKR_TOKEN_NOT_PRESENT;
   * C_GetSlotInfo loses CKF_TOKEN_PRESENT; C_WaitForSlotEvent reports the slot.
   */
  removeToken(slots?: number | readonly number[]): void {
    const state = this.attached();
    for (const slot of this.targets(slots)) {
      if (slot.token === null) continue;
      slot.removed = slot.token;
      slot.token = null;
      state.slotEvents.push(slot.id);
    }
  }

  /** Puts removed tokens back (default: all slots): the old sessions are gone and nobody is logged in. */
  insertToken(slots?: number | readonly number[]): void {
    const state = this.attached();
    for (const slot of this.targets(slots)) {
      const token = slot.removed;
      if (token === null) continue;
      slot.token = token;
      slot.removed = null;
      for (const session of state.sessionsOf(slot)) state.closeSession(session);
      state.logout(token);
      state.slotEvents.push(slot.id);
    }
  }
}
