/**
 * Fixtures for the token-directory tests: a temporary directory per test (removed in teardown),
 * an emulator on it with a cheap scrypt cost, and small PKCS#11 helpers. Each test gets its own
 * directory because ava runs tests concurrently.
 */
import type { ExecutionContext } from "ava";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Emulator, type EmulatorOptions } from "../../emulator/emulator.js";
import { pkcs11, type Handle, type Template } from "../../emulator/pkcs11.js";

export const P = pkcs11;
/** scrypt N=16, r=1, p=1: microseconds per login. One test per file uses the default cost. */
export const FAST_KDF = { N: 16, r: 1, p: 1 };
export const SO_PIN = "12345678";
export const USER_PIN = "1234";

/** CKA_VALUE of the keys persistence-child.ts creates: SHA-256 of their id. */
export function churnValue(id: string): Buffer {
  return createHash("sha256").update(id).digest();
}

/** The child-process script of the lock and crash tests (compiled beside this file). */
export const CHILD_SCRIPT = new URL("./persistence-child.js", import.meta.url);

export function tempDir(t: ExecutionContext, prefix = "hsmkit-store-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface Opened {
  emulator: Emulator;
  slot: Handle;
  session: Handle;
}

/**
 * An emulator on `dir` (token "persist" in slot 0, initialized if the directory has none),
 * C_Initialized, with a read/write session on slot 0 — logged in as the user unless `login` is false.
 */
export function openToken(dir: string, options: { login?: boolean; extra?: EmulatorOptions } = {}): Opened {
  const emulator = new Emulator({
    tokenDir: dir, kdf: FAST_KDF, slots: [{ token: { label: "persist", soPin: SO_PIN, userPin: USER_PIN } }], ...options.extra,
  });
  emulator.C_Initialize();
  const slot = emulator.C_GetSlotList()[0]!;
  const session = emulator.C_OpenSession(slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
  if (options.login !== false) emulator.C_Login(session, P.CKU_USER, USER_PIN);
  return { emulator, slot, session };
}

export function handleNumber(handle: Handle): number {
  return Number(handle.readBigUInt64LE());
}

export function findAll(emulator: Emulator, session: Handle, template: Template = []): Handle[] {
  emulator.C_FindObjectsInit(session, template);
  const found = emulator.C_FindObjects(session, 10_000);
  emulator.C_FindObjectsFinal(session);
  return found;
}

export function attr(emulator: Emulator, session: Handle, object: Handle, type: number): Buffer {
  return emulator.C_GetAttributeValue(session, object, [{ type }])[0]!.value;
}

export function secretKeyTemplate(keyType: number, value: Buffer, label: string, extra: Template = []): Template {
  return [
    { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
    { type: P.CKA_KEY_TYPE, value: keyType },
    { type: P.CKA_TOKEN, value: true },
    { type: P.CKA_PRIVATE, value: true },
    { type: P.CKA_VALUE, value },
    { type: P.CKA_LABEL, value: label },
    ...extra,
  ];
}

/** Every regular file under `dir`, with its bytes. */
export function filesUnder(dir: string): Array<{ path: string; bytes: Buffer }> {
  const out: Array<{ path: string; bytes: Buffer }> = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...filesUnder(path));
    else out.push({ path, bytes: readFileSync(path) });
  }
  return out;
}

/**
 * The encodings a key could leak in: raw bytes, hex (either case), and base64 / base64url at each
 * of the three alignments it could have inside a longer encoded blob (the characters that depend
 * only on the key's bytes) — as bytes and as UTF-16 text. Meant for values of 16 bytes or more.
 */
export function leakForms(value: Buffer): Buffer[] {
  const texts = [value.toString("hex"), value.toString("hex").toUpperCase()];
  for (const shift of [0, 1, 2]) {
    for (const encoding of ["base64", "base64url"] as const) {
      const encoded = Buffer.concat([Buffer.alloc(shift), value]).toString(encoding);
      const stable = encoded.slice(shift === 0 ? 0 : 4, encoded.length - 4);
      if (stable.length >= 8) texts.push(stable);
    }
  }
  return [value, ...texts.map((t) => Buffer.from(t, "latin1")), ...texts.map((t) => Buffer.from(t, "utf16le"))];
}

/** Files under `dir` holding `value` in any leakForms encoding, as "path (form i)". */
export function leaks(dir: string, value: Buffer): string[] {
  const forms = leakForms(value);
  const found: string[] = [];
  for (const file of filesUnder(dir)) {
    forms.forEach((form, i) => {
      if (file.bytes.includes(form)) found.push(`${file.path} (form ${i})`);
    });
  }
  return found;
}
