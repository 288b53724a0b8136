// Fault plans and latency profiles (emulator/faults.ts, emulator/latency.ts, docs/emulator-faults.md):
// each fault kind, the triggers (always, after N calls, with a seeded probability), the forms of a
// call (sync, callback, *Async), token removal and re-insertion, and latency that leaves the
// event loop free for the callback and promise forms.
import test, { type ExecutionContext } from "ava";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Emulator, FaultInjector, type EmulatorOptions, type FaultPlan } from "../../emulator/index.js";
import { Latency } from "../../emulator/latency.js";
import { pkcs11 as P, type Handle } from "../../emulator/pkcs11.js";
import type { AesGCM } from "pkcs11js";

const SO_PIN = "12345678";
const USER_PIN = "123456";
const CKF_TOKEN_PRESENT = (P as unknown as Record<string, number>).CKF_TOKEN_PRESENT!;
/** CK_SESSION_INFO.state values. */
const CKS_RW_PUBLIC_SESSION = 2;
const CKS_RW_USER_FUNCTIONS = 3;

function emulator(t: ExecutionContext, options: Omit<EmulatorOptions, "slots" | "kdf"> = {}): { p11: Emulator; slot: Handle } {
  const p11 = new Emulator({ slots: [{ token: { label: "faults", soPin: SO_PIN, userPin: USER_PIN } }], kdf: { N: 16, r: 1, p: 1 }, ...options });
  p11.C_Initialize();
  t.teardown(() => {
    try {
      p11.C_Finalize();
    } catch {
      // a test may have finalized already, or planted a fault on C_Finalize
    }
  });
  return { p11, slot: p11.C_GetSlotList(false)[0]! };
}

function userSession(p11: Emulator, slot: Handle): Handle {
  const session = p11.C_OpenSession(slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
  p11.C_Login(session, P.CKU_USER, USER_PIN);
  return session;
}

/** The CKR code a call fails with, asserting it is a Pkcs11Error naming the method. */
function rv(t: ExecutionContext, fn: () => unknown, method?: string): number {
  const error = t.throws(fn);
  t.true(error instanceof P.Pkcs11Error, `${String(error)} is a Pkcs11Error`);
  if (method !== undefined) t.is((error as { method?: string }).method, method);
  return (error as unknown as { code: number }).code;
}

async function rvAsync(t: ExecutionContext, promise: Promise<unknown>): Promise<number> {
  const error = await t.throwsAsync(promise);
  t.true(error instanceof P.Pkcs11Error);
  return (error as unknown as { code: number }).code;
}

const aesKeyTemplate = [{ type: P.CKA_VALUE_LEN, value: 32 }];
const AES_KEY_GEN = { mechanism: P.CKM_AES_KEY_GEN };

test("fail always: the named call fails with the named code in every form; other calls are untouched", async (t) => {
  const faults = new FaultInjector({ rules: [{ calls: "C_GenerateKey", fail: "CKR_DEVICE_ERROR" }] });
  const { p11, slot } = emulator(t, { faults });
  const session = userSession(p11, slot);
  t.is(rv(t, () => p11.C_GenerateKey(session, AES_KEY_GEN, aesKeyTemplate), "C_GenerateKey"), P.CKR_DEVICE_ERROR);
  t.is(await rvAsync(t, p11.C_GenerateKeyAsync(session, AES_KEY_GEN, aesKeyTemplate)), P.CKR_DEVICE_ERROR);
  const viaCallback = await new Promise<unknown>((resolve) => p11.C_GenerateKey(session, AES_KEY_GEN, aesKeyTemplate, (error) => resolve(error)));
  t.true(viaCallback instanceof P.Pkcs11Error);
  t.is((viaCallback as { code: number }).code, P.CKR_DEVICE_ERROR);
  t.is(p11.C_GenerateRandom(session, Buffer.alloc(8)).length, 8, "another call works");
  t.is(faults.events.length, 3);
  t.like(faults.events[0], { method: "C_GenerateKey", rule: 0, rv: P.CKR_DEVICE_ERROR });
});

test("a fault happens instead of the call: nothing the call would have done is done", (t) => {
  const faults = new FaultInjector({ rules: [{ calls: ["C_CreateObject"], fail: P.CKR_DEVICE_MEMORY, times: 1 }] });
  const { p11, slot } = emulator(t, { faults });
  const session = userSession(p11, slot);
  const template = [{ type: P.CKA_CLASS, value: P.CKO_DATA }, { type: P.CKA_LABEL, value: "once" }];
  t.is(rv(t, () => p11.C_CreateObject(session, template)), P.CKR_DEVICE_MEMORY, "a numeric code works too");
  p11.C_FindObjectsInit(session, [{ type: P.CKA_LABEL, value: "once" }]);
  t.deepEqual(p11.C_FindObjects(session, 10), []);
  p11.C_FindObjectsFinal(session);
  t.truthy(p11.C_CreateObject(session, template), "times: 1 — the second call goes through");
});

test("after N calls: the first N pass, then the rule fires (at most `times` times)", (t) => {
  const faults = new FaultInjector({
    rules: [
      { calls: "C_GenerateRandom", fail: "CKR_DEVICE_MEMORY", after: 3 },
      { calls: "C_SeedRandom", fail: "CKR_FUNCTION_FAILED", after: 1, times: 2 },
    ],
  });
  const { p11, slot } = emulator(t, { faults });
  const session = p11.C_OpenSession(slot, P.CKF_SERIAL_SESSION);
  const outcomes = Array.from({ length: 6 }, () => {
    try {
      p11.C_GenerateRandom(session, Buffer.alloc(4));
      return "ok";
    } catch (error) {
      return (error as { code: number }).code === P.CKR_DEVICE_MEMORY ? "fault" : String(error);
    }
  });
  t.deepEqual(outcomes, ["ok", "ok", "ok", "fault", "fault", "fault"]);
  const seeds = Array.from({ length: 5 }, () => {
    try {
      p11.C_SeedRandom(session, Buffer.from("seed"));
      return "ok";
    } catch {
      return "fault";
    }
  });
  t.deepEqual(seeds, ["ok", "fault", "fault", "ok", "ok"]);
});

test("probability p from a seed: reproducible for one seed, different for another, near p over many calls", (t) => {
  const plan = (seed: number): FaultPlan => ({ seed, rules: [{ calls: "C_GenerateRandom", fail: "CKR_FUNCTION_FAILED", probability: 0.3 }] });
  const pattern = (seed: number): string => {
    const { p11, slot } = emulator(t, { faults: plan(seed) });
    const session = p11.C_OpenSession(slot, P.CKF_SERIAL_SESSION);
    let out = "";
    for (let i = 0; i < 400; i++) {
      try {
        p11.C_GenerateRandom(session, Buffer.alloc(1));
        out += ".";
      } catch (error) {
        t.is((error as { code: number }).code, P.CKR_FUNCTION_FAILED);
        out += "x";
      }
    }
    return out;
  };
  const first = pattern(42);
  t.is(pattern(42), first, "same seed, same faults");
  t.not(pattern(43), first, "another seed, other faults");
  const rate = [...first].filter((c) => c === "x").length / first.length;
  t.true(rate > 0.2 && rate < 0.4, `fault rate ${rate} near 0.3`);
});

test("a rule's random stream is its own: calls another rule watches do not change which calls it faults", (t) => {
  const run = (withOther: boolean): string => {
    const { p11, slot } = emulator(t, {
      faults: { seed: 7, rules: [{ calls: "C_GenerateRandom", fail: "CKR_DEVICE_ERROR", probability: 0.5 }, { calls: "C_SeedRandom", fail: "CKR_DEVICE_ERROR", probability: 0.5 }] },
    });
    const session = p11.C_OpenSession(slot, P.CKF_SERIAL_SESSION);
    let out = "";
    for (let i = 0; i < 50; i++) {
      if (withOther) {
        try {
          p11.C_SeedRandom(session, Buffer.from("x"));
        } catch {
          // the other rule's business
        }
      }
      try {
        p11.C_GenerateRandom(session, Buffer.alloc(1));
        out += ".";
      } catch {
        out += "x";
      }
    }
    return out;
  };
  t.is(run(true), run(false));
});

test("callback and *Async forms count in call order, when called, not when they complete", async (t) => {
  const { p11, slot } = emulator(t, { faults: { rules: [{ calls: "C_GenerateKey", fail: "CKR_DEVICE_MEMORY", after: 1, times: 1 }] } });
  const session = userSession(p11, slot);
  const results = await Promise.allSettled([0, 1, 2].map(() => p11.C_GenerateKeyAsync(session, AES_KEY_GEN, aesKeyTemplate)));
  t.deepEqual(results.map((r) => r.status), ["fulfilled", "rejected", "fulfilled"]);
  const rejected = results[1] as PromiseRejectedResult;
  t.true(rejected.reason instanceof P.Pkcs11Error);
  t.is((rejected.reason as { code: number }).code, P.CKR_DEVICE_MEMORY);
});

test("closeSessions: the sessions go (CKR_SESSION_HANDLE_INVALID), and with them the login and the session objects", (t) => {
  const faults = new FaultInjector({ rules: [{ calls: "C_EncryptInit", effect: "closeSessions", fail: "CKR_SESSION_CLOSED", times: 1 }] });
  const { p11, slot } = emulator(t, { faults });
  const session = userSession(p11, slot);
  const other = p11.C_OpenSession(slot, P.CKF_SERIAL_SESSION);
  const key = p11.C_GenerateKey(session, AES_KEY_GEN, aesKeyTemplate);
  const parameter: AesGCM = { type: P.CK_PARAMS_AES_GCM, iv: Buffer.alloc(12), ivBits: 96, tagBits: 128 };
  t.is(rv(t, () => p11.C_EncryptInit(session, { mechanism: P.CKM_AES_GCM, parameter }, key)), P.CKR_SESSION_CLOSED);
  t.is(rv(t, () => p11.C_GetSessionInfo(session)), P.CKR_SESSION_HANDLE_INVALID);
  t.is(rv(t, () => p11.C_GetSessionInfo(other)), P.CKR_SESSION_HANDLE_INVALID, "every session of the slot");
  const fresh = p11.C_OpenSession(slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
  t.is(p11.C_GetSessionInfo(fresh).state, CKS_RW_PUBLIC_SESSION, "nobody is logged in");
  p11.C_Login(fresh, P.CKU_USER, USER_PIN);
  t.is(rv(t, () => p11.C_GetAttributeValue(fresh, key, [{ type: P.CKA_LABEL }])), P.CKR_OBJECT_HANDLE_INVALID, "the session key went with its session");
  t.like(faults.events, [{ method: "C_EncryptInit", effect: "closeSessions", rv: P.CKR_SESSION_CLOSED }]);
});

test("an effect without a code lets the call run on the changed token", (t) => {
  const { p11, slot } = emulator(t, { faults: { rules: [{ calls: "C_GetSessionInfo", effect: "closeSessions", times: 1 }] } });
  const session = p11.C_OpenSession(slot, P.CKF_SERIAL_SESSION);
  t.is(rv(t, () => p11.C_GetSessionInfo(session)), P.CKR_SESSION_HANDLE_INVALID);
  const next = p11.C_OpenSession(slot, P.CKF_SERIAL_SESSION);
  t.is(p11.C_GetSessionInfo(next).flags, P.CKF_SERIAL_SESSION, "times: 1");
});

test("removeToken: device removed for its sessions, token not present for the slot, slot flags and slot events follow", (t) => {
  const faults = new FaultInjector({ rules: [{ calls: "C_Sign", effect: "removeToken", times: 1 }] });
  const { p11, slot } = emulator(t, { faults });
  const session = userSession(p11, slot);
  const stored = p11.C_CreateObject(session, [{ type: P.CKA_CLASS, value: P.CKO_DATA }, { type: P.CKA_TOKEN, value: true }, { type: P.CKA_LABEL, value: "kept" }]);
  t.truthy(stored);
  p11.C_CreateObject(session, [{ type: P.CKA_CLASS, value: P.CKO_DATA }, { type: P.CKA_LABEL, value: "lost" }]);
  t.is(p11.C_WaitForSlotEvent(P.CKF_DONT_BLOCK), null, "no event yet");

  t.is(rv(t, () => p11.C_Sign(session, Buffer.alloc(1), Buffer.alloc(64))), P.CKR_DEVICE_REMOVED, "the call that pulled it");
  t.is(rv(t, () => p11.C_GetSessionInfo(session)), P.CKR_DEVICE_REMOVED);
  t.is(rv(t, () => p11.C_CloseSession(session)), P.CKR_DEVICE_REMOVED);
  t.is(rv(t, () => p11.C_GetTokenInfo(slot)), P.CKR_TOKEN_NOT_PRESENT);
  t.is(rv(t, () => p11.C_OpenSession(slot, P.CKF_SERIAL_SESSION)), P.CKR_TOKEN_NOT_PRESENT);
  t.is(rv(t, () => p11.C_GetMechanismList(slot)), P.CKR_TOKEN_NOT_PRESENT);
  t.is(rv(t, () => p11.C_CloseAllSessions(slot)), P.CKR_TOKEN_NOT_PRESENT);
  t.falsy(p11.C_GetSlotInfo(slot).flags & CKF_TOKEN_PRESENT);
  t.deepEqual(p11.C_GetSlotList(true), []);
  t.is(p11.C_GetSlotList(false).length, 1, "the slot stays");
  t.deepEqual(p11.C_WaitForSlotEvent(P.CKF_DONT_BLOCK), slot, "the removal is a slot event");
  t.is(p11.C_WaitForSlotEvent(P.CKF_DONT_BLOCK), null);

  faults.insertToken(0);
  t.truthy(p11.C_GetSlotInfo(slot).flags & CKF_TOKEN_PRESENT);
  t.deepEqual(p11.C_WaitForSlotEvent(P.CKF_DONT_BLOCK), slot, "so is the insertion");
  t.is(rv(t, () => p11.C_GetSessionInfo(session)), P.CKR_SESSION_HANDLE_INVALID, "the old sessions are gone");
  const again = p11.C_OpenSession(slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
  t.is(p11.C_GetSessionInfo(again).state, CKS_RW_PUBLIC_SESSION, "nobody is logged in");
  p11.C_Login(again, P.CKU_USER, USER_PIN);
  t.is(p11.C_GetSessionInfo(again).state, CKS_RW_USER_FUNCTIONS);
  const find = (label: string): number => {
    p11.C_FindObjectsInit(again, [{ type: P.CKA_LABEL, value: label }]);
    const found = p11.C_FindObjects(again, 10).length;
    p11.C_FindObjectsFinal(again);
    return found;
  };
  t.is(find("kept"), 1, "token objects survive removal");
  t.is(find("lost"), 0, "session objects do not");
  t.deepEqual(faults.events.map((e) => e.effect), ["removeToken"]);
});

test("removal and re-insertion by rules: pulled after two calls, back when the application rescans the slots", (t) => {
  const { p11, slot } = emulator(t, {
    faults: {
      rules: [
        { calls: "C_GenerateRandom", effect: "removeToken", after: 2, times: 1 },
        { calls: "C_GetSlotList", effect: "insertToken", after: 1 },
      ],
    },
  });
  const session = p11.C_OpenSession(slot, P.CKF_SERIAL_SESSION);
  p11.C_GenerateRandom(session, Buffer.alloc(4));
  p11.C_GenerateRandom(session, Buffer.alloc(4));
  t.is(rv(t, () => p11.C_GenerateRandom(session, Buffer.alloc(4))), P.CKR_DEVICE_REMOVED);
  t.is(p11.C_GetSlotList(true).length, 1, "the rescan put it back before listing");
  t.truthy(p11.C_GenerateRandom(p11.C_OpenSession(slot, P.CKF_SERIAL_SESSION), Buffer.alloc(4)));
});

test("removeToken and insertToken on a chosen slot leave the other slots alone", (t) => {
  const faults = new FaultInjector({ rules: [] });
  const p11 = new Emulator({
    slots: [{ token: { label: "a", soPin: SO_PIN } }, { token: { label: "b", soPin: SO_PIN } }],
    kdf: { N: 16, r: 1, p: 1 },
    faults,
  });
  p11.C_Initialize();
  t.teardown(() => p11.C_Finalize());
  const [a, b] = p11.C_GetSlotList(false) as [Handle, Handle];
  faults.removeToken(1);
  t.truthy(p11.C_GetSlotInfo(a).flags & CKF_TOKEN_PRESENT);
  t.falsy(p11.C_GetSlotInfo(b).flags & CKF_TOKEN_PRESENT);
  faults.insertToken();
  t.truthy(p11.C_GetSlotInfo(b).flags & CKF_TOKEN_PRESENT);
  t.throws(() => faults.removeToken(5), { instanceOf: RangeError });
});

test("latency: a synchronous call takes at least its delay; others are not slowed", (t) => {
  const { p11, slot } = emulator(t, { latency: { calls: { C_GenerateRandom: 120 } } });
  const session = p11.C_OpenSession(slot, P.CKF_SERIAL_SESSION);
  let start = performance.now();
  p11.C_GenerateRandom(session, Buffer.alloc(4));
  t.true(performance.now() - start >= 118, "C_GenerateRandom waited");
  start = performance.now();
  p11.C_GetSessionInfo(session);
  t.true(performance.now() - start < 60, "C_GetSessionInfo did not");
});

test("latency: callback and *Async forms wait on a timer, leaving the event loop free", async (t) => {
  const { p11, slot } = emulator(t, { latency: 150 });
  const session = userSession(p11, slot);
  const order: string[] = [];
  const timer = new Promise<void>((resolve) => setTimeout(() => {
    order.push("timer");
    resolve();
  }, 10));
  const start = performance.now();
  const viaPromise = p11.C_GenerateKeyAsync(session, AES_KEY_GEN, aesKeyTemplate).then(() => order.push("async"));
  const viaCallback = new Promise<void>((resolve) => p11.C_GenerateKey(session, AES_KEY_GEN, aesKeyTemplate, () => {
    order.push("callback");
    resolve();
  }));
  t.true(performance.now() - start < 75, "the calls returned at once");
  await Promise.all([timer, viaPromise, viaCallback]);
  t.is(order[0], "timer", "a 10 ms timer fired while both calls waited");
  t.true(performance.now() - start >= 145);
});

test("latency jitter is drawn from its seed: the same profile gives the same delays", (t) => {
  const methods = new Set(["C_Sign", "C_Encrypt"]);
  const delays = (seed: number) => {
    const latency = new Latency({ default: 2, calls: { C_Sign: 10 }, jitter: 5, seed }, methods);
    return Array.from({ length: 20 }, (_, i) => latency.delay(i % 2 ? "C_Sign" : "C_Encrypt"));
  };
  t.deepEqual(delays(9), delays(9));
  t.notDeepEqual(delays(9), delays(10));
  for (const [i, d] of delays(9).entries()) {
    const base = i % 2 ? 10 : 2;
    t.true(d >= base && d < base + 5);
  }
});

test("a plan can be a JSON file", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "hsmkit-faults-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, "plan.json");
  writeFileSync(path, JSON.stringify({ seed: 3, rules: [{ calls: ["C_GenerateRandom"], fail: "CKR_DEVICE_ERROR", after: 1 }] }));
  const { p11, slot } = emulator(t, { faults: path });
  const session = p11.C_OpenSession(slot, P.CKF_SERIAL_SESSION);
  p11.C_GenerateRandom(session, Buffer.alloc(4));
  t.is(rv(t, () => p11.C_GenerateRandom(session, Buffer.alloc(4))), P.CKR_DEVICE_ERROR);
  t.throws(() => new Emulator({ faults: join(dir, "missing.json") }), { instanceOf: TypeError, message: /cannot read/ });
});

test("plans are checked when the emulator is made: names, codes, fields, ranges", (t) => {
  const bad: Array<[string, unknown]> = [
    ["unknown code", { rules: [{ calls: "C_Sign", fail: "CKR_NO_SUCH_THING" }] }],
    ["unknown method", { rules: [{ calls: "C_Sing", fail: "CKR_DEVICE_ERROR" }] }],
    ["an Async name", { rules: [{ calls: "C_SignAsync", fail: "CKR_DEVICE_ERROR" }] }],
    ["neither fail nor effect", { rules: [{ calls: "C_Sign" }] }],
    ["CKR_OK", { rules: [{ calls: "C_Sign", fail: "CKR_OK" }] }],
    ["unknown effect", { rules: [{ calls: "C_Sign", effect: "explode" }] }],
    ["unknown field", { rules: [{ calls: "C_Sign", fail: "CKR_DEVICE_ERROR", every: 2 }] }],
    ["probability 0", { rules: [{ calls: "C_Sign", fail: "CKR_DEVICE_ERROR", probability: 0 }] }],
    ["probability above 1", { rules: [{ calls: "C_Sign", fail: "CKR_DEVICE_ERROR", probability: 1.5 }] }],
    ["negative after", { rules: [{ calls: "C_Sign", fail: "CKR_DEVICE_ERROR", after: -1 }] }],
    ["no such slot", { rules: [{ calls: "C_Sign", effect: "removeToken", slots: [4] }] }],
    ["no rules", { seed: 1 }],
  ];
  for (const [what, plan] of bad) t.throws(() => new Emulator({ faults: plan as FaultPlan }), { instanceOf: TypeError }, what);
  t.throws(() => new Emulator({ latency: { calls: { C_Nothing: 5 } } }), { instanceOf: TypeError }, "latency for an unknown call");
  t.throws(() => new Emulator({ latency: -1 }), { instanceOf: TypeError }, "negative latency");
  const shared = new FaultInjector({ rules: [] });
  t.notThrows(() => new Emulator({ faults: shared }));
  t.throws(() => new Emulator({ faults: shared }), { message: /already belongs/ }, "one injector, one emulator");
});

test("a refused plan leaves the token directory free for the next emulator", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "hsmkit-faults-dir-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const options = { tokenDir: dir, slots: [{ token: { label: "faults", soPin: SO_PIN } }], kdf: { N: 16, r: 1, p: 1 } };
  t.throws(() => new Emulator({ ...options, faults: { rules: [{ calls: "C_Nope", fail: "CKR_DEVICE_ERROR" }] } }), { instanceOf: TypeError });
  const emulator = new Emulator(options);
  t.teardown(() => emulator.close());
  emulator.C_Initialize();
  t.is(emulator.C_GetSlotList(true).length, 1);
});

test("\"*\" watches every call", (t) => {
  const faults = new FaultInjector({ rules: [{ calls: "*", fail: "CKR_DEVICE_ERROR", after: 2 }] });
  const { p11, slot } = emulator(t, { faults }); // C_Initialize and C_GetSlotList are the two
  t.is(rv(t, () => p11.C_GetSlotInfo(slot)), P.CKR_DEVICE_ERROR);
  t.is(rv(t, () => p11.C_GetInfo()), P.CKR_DEVICE_ERROR);
  t.deepEqual(faults.events.map((e) => e.method), ["C_GetSlotInfo", "C_GetInfo"]);
});
