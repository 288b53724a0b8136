/**
 * The emulator's public face: an object with exactly the method surface of pkcs11js's PKCS11
 * (every method of its index.d.ts, the Node-style callback overloads graphene uses, and the
 * *Async forms), so `new graphene.Module(emulator)` and code written for pkcs11js run on it
 * unchanged, in-process, with no hardware.
 *
 * Each method is a thin edge: it applies the fault plan and latency profile, calls the function
 * of the specification chapter it belongs to (emulator/functions/), and turns any failure into
 * pkcs11js's own Pkcs11Error with the CKR code — the only error the surface throws.
 */
import { toPkcs11Error } from "./errors.js";
import * as general from "./functions/general.js";
import * as slotToken from "./functions/slot-token.js";
import * as sessions from "./functions/session.js";
import * as objects from "./functions/object.js";
import * as encryption from "./functions/encryption.js";
import * as decryption from "./functions/decryption.js";
import * as digesting from "./functions/digest.js";
import * as signing from "./functions/sign-verify.js";
import * as keys from "./functions/key-management.js";
import * as random from "./functions/random.js";
import { CkrError } from "./errors.js";
import { FaultInjector, type FaultDecision, type FaultPlan } from "./faults.js";
import { Latency, sleepSync, type LatencyProfile } from "./latency.js";
import { pkcs11, type AttributeResult, type Handle, type InitializationOptions, type KeyPair, type Mechanism, type MechanismInfo, type ModuleInfo, type PKCS11, type SessionInfo, type SlotInfo, type Template, type TokenInfo } from "./pkcs11.js";
import { Slot } from "./slot.js";
import { importAsymmetricKey } from "./mechanisms/asymmetric.js";
import { ModuleState } from "./state.js";
import { TokenDirectory } from "./store/token-directory.js";
import { DEFAULT_KDF, Token, type KdfParams } from "./token.js";

type Callback<T> = (error: Error | null, result: T) => void;

export interface EmulatorSlotOptions {
  /** CK_SLOT_INFO.slotDescription. */
  description?: string;
  /** Initialize the token at construction (as C_InitToken + C_InitPIN would). */
  token?: { label: string; soPin: string; userPin?: string };
}

export interface EmulatorOptions {
  /** Slots, each with one token; default: one slot with an uninitialized token. */
  slots?: number | EmulatorSlotOptions[];
  /** scrypt cost for PIN-derived keys (default N=2^14, r=8, p=1). */
  kdf?: KdfParams;
  /**
   * A directory where tokens persist across restarts, created if absent (docs/emulator-storage.md).
   * Stored tokens are kept as they are (a slot's `token` option initializes only a slot that has
   * none), and there are as many slots as `slots` asks or the directory holds, whichever is more.
   * The emulator owns the directory from construction to close(): if another process or another
   * Emulator holds it, the constructor throws TokenDirectoryLockedError naming the owner.
   * Absent: tokens live in memory.
   */
  tokenDir?: string;
  /**
   * Fault plan (emulator/faults.ts, docs/emulator-faults.md): a plan object, the path of a JSON
   * file holding one, or a FaultInjector you keep to inspect and drive. Default: no faults.
   */
  faults?: FaultPlan | FaultInjector | string;
  /** Milliseconds added to calls (emulator/latency.ts): a number for every call, or a profile. Default: none. */
  latency?: LatencyProfile | number;
}

/**
 * The slots and their tokens: from the token directory when there is one (its stored tokens as
 * they are), new otherwise; a slot's `token` option initializes a token that is not yet. The
 * directory is closed again if anything here fails.
 */
function buildSlots(slotOptions: EmulatorSlotOptions[], kdf: KdfParams, store: TokenDirectory | null): Slot[] {
  try {
    const count = Math.max(slotOptions.length, store?.slotCount ?? 0);
    return Array.from({ length: count }, (_, i) => {
      const o = slotOptions[i] ?? {};
      const token = store?.token(i) ?? new Token(`hsmkit-${String(i).padStart(8, "0")}`, kdf);
      if (o.token && !token.initialized) {
        token.initialize(Buffer.from(o.token.soPin, "utf8"), o.token.label);
        if (o.token.userPin !== undefined) token.setPin("user", Buffer.from(o.token.userPin, "utf8"));
        store?.tokenInitialized(token);
      }
      return new Slot(i, o.description ?? `hsmkit emulator slot ${i}`, token);
    });
  } catch (error) {
    store?.close();
    throw error;
  }
}

/** Calls the callback on a later turn, as pkcs11js's callback forms complete on the libuv pool. */
function later<T>(callback: Callback<T>, body: () => T): void {
  let result: T;
  try {
    result = body();
  } catch (error) {
    setImmediate(() => callback(error as Error, null as T));
    return;
  }
  setImmediate(() => callback(null, result));
}

/** The C_ functions of the surface, by pkcs11js name (without the *Async forms): what fault rules and latency profiles may name. */
function surfaceMethods(): ReadonlySet<string> {
  return new Set(Object.getOwnPropertyNames(Emulator.prototype).filter((name) => /^C_[A-Za-z]+$/.test(name) && !name.endsWith("Async")));
}

export class Emulator implements PKCS11 {
  public libPath = "";
  private readonly state: ModuleState;
  private readonly store: TokenDirectory | null;
  private readonly faults: FaultInjector | undefined;
  private readonly latency: Latency | undefined;

  constructor(options: EmulatorOptions = {}) {
    const slotOptions: EmulatorSlotOptions[] =
      typeof options.slots === "number" ? Array.from({ length: options.slots }, () => ({})) : options.slots ?? [{}];
    const kdf = options.kdf ?? DEFAULT_KDF;
    this.store = options.tokenDir === undefined ? null : TokenDirectory.open(options.tokenDir, { kdf });
    this.state = new ModuleState(buildSlots(slotOptions, kdf, this.store));
    this.state.asymmetricImport = importAsymmetricKey;
    this.store?.attach(this.state);
    if (options.faults !== undefined || options.latency !== undefined) {
      try {
        const methods = surfaceMethods();
        if (options.faults !== undefined) {
          this.faults = options.faults instanceof FaultInjector ? options.faults : new FaultInjector(options.faults);
          this.faults.attach(this.state, methods);
        }
        if (options.latency !== undefined) this.latency = new Latency(options.latency, methods);
      } catch (error) {
        this.store?.close(); // a refused plan or profile must not leave the token directory locked
        throw error;
      }
    }
  }

  /**
   * Runs one PKCS#11 function at the edge. The fault plan decides as the call is made; the
   * latency profile's delay blocks this (synchronous) call — see emulator/latency.ts.
   */
  private call<T>(method: string, body: () => T): T {
    const fault = this.faults?.decide(method);
    sleepSync(this.latency?.delay(method) ?? 0);
    return this.run(method, fault, body);
  }

  /** The function itself: any injected fault, then the body; every failure leaves as a Pkcs11Error. */
  private run<T>(method: string, fault: FaultDecision | undefined, body: () => T): T {
    try {
      fault?.apply();
      return body();
    } catch (error) {
      throw toPkcs11Error(error, method);
    }
  }

  /**
   * The callback and promise forms share this: the same function, completed on a later turn.
   * A latency delay waits on a timer, so the event loop stays free.
   */
  private callLater<T>(method: string, callback: Callback<T>, body: () => T): void {
    const fault = this.faults?.decide(method);
    const delay = this.latency?.delay(method) ?? 0;
    const settle = (): void => later(callback, () => this.run(method, fault, body));
    if (delay > 0) setTimeout(settle, delay);
    else settle();
  }

  private callAsync<T>(method: string, body: () => T): Promise<T> {
    return new Promise((resolve, reject) => this.callLater(method, (error, result: T) => (error ? reject(error) : resolve(result)), body));
  }

  // General-purpose (§5.4)
  load(path: string): void {
    this.libPath = path;
  }
  /** Unloads: finalizes, and with a token directory cleanses its keys and releases its lock. */
  close(): void {
    if (this.state.initialized) general.finalize(this.state);
    this.store?.close();
  }
  C_Initialize(options?: InitializationOptions): void {
    this.call("C_Initialize", () => {
      // After close(), the token directory is taken again and read afresh.
      if (!this.state.initialized) this.store?.reopen(this.state);
      general.initialize(this.state, options);
    });
  }
  C_Finalize(): void {
    this.call("C_Finalize", () => general.finalize(this.state));
  }
  C_GetInfo(): ModuleInfo {
    return this.call("C_GetInfo", () => general.getInfo(this.state));
  }

  // Slot and token management (§5.5)
  C_GetSlotList(tokenPresent?: boolean): Handle[] {
    return this.call("C_GetSlotList", () => slotToken.getSlotList(this.state, tokenPresent));
  }
  C_GetSlotInfo(slot: Handle): SlotInfo {
    return this.call("C_GetSlotInfo", () => slotToken.getSlotInfo(this.state, slot));
  }
  C_GetTokenInfo(slot: Handle): TokenInfo {
    return this.call("C_GetTokenInfo", () => slotToken.getTokenInfo(this.state, slot));
  }
  C_InitToken(slot: Handle, pin?: string, label?: string): string {
    return this.call("C_InitToken", () => slotToken.initToken(this.state, slot, pin, label));
  }
  C_InitPIN(session: Handle, pin?: string): void {
    this.call("C_InitPIN", () => slotToken.initPin(this.state, session, pin));
  }
  C_SetPIN(session: Handle, oldPin: string, newPin: string): void {
    this.call("C_SetPIN", () => slotToken.setPin(this.state, session, oldPin, newPin));
  }
  C_GetMechanismList(slot: Handle): number[] {
    return this.call("C_GetMechanismList", () => slotToken.getMechanismList(this.state, slot));
  }
  C_GetMechanismInfo(slot: Handle, mech: number): MechanismInfo {
    return this.call("C_GetMechanismInfo", () => slotToken.getMechanismInfo(this.state, slot, mech));
  }
  C_WaitForSlotEvent(flags: number): Handle | null {
    return this.call("C_WaitForSlotEvent", () => slotToken.waitForSlotEvent(this.state, flags));
  }

  // Session management (§5.6)
  C_OpenSession(slot: Handle, flags: number): Handle {
    return this.call("C_OpenSession", () => sessions.openSession(this.state, slot, flags));
  }
  C_CloseSession(session: Handle): void {
    this.call("C_CloseSession", () => sessions.closeSession(this.state, session));
  }
  C_CloseAllSessions(slot: Handle): void {
    this.call("C_CloseAllSessions", () => sessions.closeAllSessions(this.state, slot));
  }
  C_GetSessionInfo(session: Handle): SessionInfo {
    return this.call("C_GetSessionInfo", () => sessions.getSessionInfo(this.state, session));
  }
  C_Login(session: Handle, userType: number, pin?: string): void {
    this.call("C_Login", () => sessions.login(this.state, session, userType, pin));
  }
  C_Logout(session: Handle): void {
    this.call("C_Logout", () => sessions.logout(this.state, session));
  }

  // Object management (§5.7)
  C_CreateObject(session: Handle, template: Template): Handle {
    return this.call("C_CreateObject", () => objects.createObject(this.state, session, template));
  }
  C_CopyObject(session: Handle, object: Handle, template: Template): Handle {
    return this.call("C_CopyObject", () => objects.copyObject(this.state, session, object, template));
  }
  C_DestroyObject(session: Handle, object: Handle): void {
    this.call("C_DestroyObject", () => objects.destroyObject(this.state, session, object));
  }
  C_GetObjectSize(session: Handle, object: Handle): number {
    return this.call("C_GetObjectSize", () => objects.getObjectSize(this.state, session, object));
  }
  C_FindObjectsInit(session: Handle, template: Template): void {
    this.call("C_FindObjectsInit", () => objects.findObjectsInit(this.state, session, template));
  }
  C_FindObjects(session: Handle, maxObjectCount: number): Handle[];
  C_FindObjects(session: Handle): Handle | null;
  C_FindObjects(session: Handle, maxObjectCount?: number): Handle[] | Handle | null {
    if (maxObjectCount === undefined) {
      return this.call("C_FindObjects", () => objects.findObjects(this.state, session, 1)[0] ?? null);
    }
    return this.call("C_FindObjects", () => objects.findObjects(this.state, session, maxObjectCount));
  }
  C_FindObjectsFinal(session: Handle): void {
    this.call("C_FindObjectsFinal", () => objects.findObjectsFinal(this.state, session));
  }
  C_GetAttributeValue(session: Handle, object: Handle, template: Template): AttributeResult[] {
    return this.call("C_GetAttributeValue", () => objects.getAttributeValue(this.state, session, object, template));
  }
  C_SetAttributeValue(session: Handle, object: Handle, template: Template): void {
    this.call("C_SetAttributeValue", () => objects.setAttributeValue(this.state, session, object, template));
  }

  // Encryption (§5.8)
  C_EncryptInit(session: Handle, mechanism: Mechanism, key: Handle): void {
    this.call("C_EncryptInit", () => encryption.encryptInit(this.state, session, mechanism, key));
  }
  C_Encrypt(session: Handle, inData: Buffer, outData: Buffer): Buffer;
  C_Encrypt(session: Handle, inData: Buffer, outData: Buffer, cb: Callback<Buffer>): void;
  C_Encrypt(session: Handle, inData: Buffer, outData: Buffer, cb?: Callback<Buffer>): Buffer | void {
    const body = (): Buffer => encryption.encrypt(this.state, session, inData, outData);
    if (typeof cb === "function") return this.callLater("C_Encrypt", cb, body);
    return this.call("C_Encrypt", body);
  }
  C_EncryptAsync(session: Handle, inData: Buffer, outData: Buffer): Promise<Buffer> {
    return this.callAsync("C_Encrypt", () => encryption.encrypt(this.state, session, inData, outData));
  }
  C_EncryptUpdate(session: Handle, inData: Buffer, outData: Buffer): Buffer {
    return this.call("C_EncryptUpdate", () => encryption.encryptUpdate(this.state, session, inData, outData));
  }
  C_EncryptFinal(session: Handle, outData: Buffer): Buffer;
  C_EncryptFinal(session: Handle, outData: Buffer, cb: Callback<Buffer>): void;
  C_EncryptFinal(session: Handle, outData: Buffer, cb?: Callback<Buffer>): Buffer | void {
    const body = (): Buffer => encryption.encryptFinal(this.state, session, outData);
    if (typeof cb === "function") return this.callLater("C_EncryptFinal", cb, body);
    return this.call("C_EncryptFinal", body);
  }
  C_EncryptFinalAsync(session: Handle, outData: Buffer): Promise<Buffer> {
    return this.callAsync("C_EncryptFinal", () => encryption.encryptFinal(this.state, session, outData));
  }

  // Decryption (§5.9)
  C_DecryptInit(session: Handle, mechanism: Mechanism, key: Handle): void {
    this.call("C_DecryptInit", () => decryption.decryptInit(this.state, session, mechanism, key));
  }
  C_Decrypt(session: Handle, inData: Buffer, outData: Buffer): Buffer;
  C_Decrypt(session: Handle, inData: Buffer, outData: Buffer, cb: Callback<Buffer>): void;
  C_Decrypt(session: Handle, inData: Buffer, outData: Buffer, cb?: Callback<Buffer>): Buffer | void {
    const body = (): Buffer => decryption.decrypt(this.state, session, inData, outData);
    if (typeof cb === "function") return this.callLater("C_Decrypt", cb, body);
    return this.call("C_Decrypt", body);
  }
  C_DecryptAsync(session: Handle, inData: Buffer, outData: Buffer): Promise<Buffer> {
    return this.callAsync("C_Decrypt", () => decryption.decrypt(this.state, session, inData, outData));
  }
  C_DecryptUpdate(session: Handle, inData: Buffer, outData: Buffer): Buffer {
    return this.call("C_DecryptUpdate", () => decryption.decryptUpdate(this.state, session, inData, outData));
  }
  C_DecryptFinal(session: Handle, outData: Buffer): Buffer;
  C_DecryptFinal(session: Handle, outData: Buffer, cb: Callback<Buffer>): void;
  C_DecryptFinal(session: Handle, outData: Buffer, cb?: Callback<Buffer>): Buffer | void {
    const body = (): Buffer => decryption.decryptFinal(this.state, session, outData);
    if (typeof cb === "function") return this.callLater("C_DecryptFinal", cb, body);
    return this.call("C_DecryptFinal", body);
  }
  C_DecryptFinalAsync(session: Handle, outData: Buffer): Promise<Buffer> {
    return this.callAsync("C_DecryptFinal", () => decryption.decryptFinal(this.state, session, outData));
  }

  // Message digesting (§5.10)
  C_DigestInit(session: Handle, mechanism: Mechanism): void {
    this.call("C_DigestInit", () => digesting.digestInit(this.state, session, mechanism));
  }
  C_Digest(session: Handle, inData: Buffer, outData: Buffer): Buffer;
  C_Digest(session: Handle, inData: Buffer, outData: Buffer, cb: Callback<Buffer>): void;
  C_Digest(session: Handle, inData: Buffer, outData: Buffer, cb?: Callback<Buffer>): Buffer | void {
    const body = (): Buffer => digesting.digest(this.state, session, inData, outData);
    if (typeof cb === "function") return this.callLater("C_Digest", cb, body);
    return this.call("C_Digest", body);
  }
  C_DigestAsync(session: Handle, inData: Buffer, outData: Buffer): Promise<Buffer> {
    return this.callAsync("C_Digest", () => digesting.digest(this.state, session, inData, outData));
  }
  C_DigestUpdate(session: Handle, inData: Buffer): void {
    this.call("C_DigestUpdate", () => digesting.digestUpdate(this.state, session, inData));
  }
  C_DigestKey(session: Handle, key: Handle): void {
    this.call("C_DigestKey", () => digesting.digestKey(this.state, session, key));
  }
  C_DigestFinal(session: Handle, outData: Buffer): Buffer;
  C_DigestFinal(session: Handle, outData: Buffer, cb: Callback<Buffer>): void;
  C_DigestFinal(session: Handle, outData: Buffer, cb?: Callback<Buffer>): Buffer | void {
    const body = (): Buffer => digesting.digestFinal(this.state, session, outData);
    if (typeof cb === "function") return this.callLater("C_DigestFinal", cb, body);
    return this.call("C_DigestFinal", body);
  }
  C_DigestFinalAsync(session: Handle, outData: Buffer): Promise<Buffer> {
    return this.callAsync("C_DigestFinal", () => digesting.digestFinal(this.state, session, outData));
  }

  // Signing and MACing (§5.11)
  C_SignInit(session: Handle, mechanism: Mechanism, key: Handle): void {
    this.call("C_SignInit", () => signing.signInit(this.state, session, mechanism, key));
  }
  C_Sign(session: Handle, inData: Buffer, outData: Buffer): Buffer;
  C_Sign(session: Handle, inData: Buffer, outData: Buffer, cb: Callback<Buffer>): void;
  C_Sign(session: Handle, inData: Buffer, outData: Buffer, cb?: Callback<Buffer>): Buffer | void {
    const body = (): Buffer => signing.sign(this.state, session, inData, outData);
    if (typeof cb === "function") return this.callLater("C_Sign", cb, body);
    return this.call("C_Sign", body);
  }
  C_SignAsync(session: Handle, inData: Buffer, outData: Buffer): Promise<Buffer> {
    return this.callAsync("C_Sign", () => signing.sign(this.state, session, inData, outData));
  }
  C_SignUpdate(session: Handle, inData: Buffer): void {
    this.call("C_SignUpdate", () => signing.signUpdate(this.state, session, inData));
  }
  C_SignFinal(session: Handle, outData: Buffer): Buffer;
  C_SignFinal(session: Handle, outData: Buffer, cb: Callback<Buffer>): void;
  C_SignFinal(session: Handle, outData: Buffer, cb?: Callback<Buffer>): Buffer | void {
    const body = (): Buffer => signing.signFinal(this.state, session, outData);
    if (typeof cb === "function") return this.callLater("C_SignFinal", cb, body);
    return this.call("C_SignFinal", body);
  }
  C_SignFinalAsync(session: Handle, outData: Buffer): Promise<Buffer> {
    return this.callAsync("C_SignFinal", () => signing.signFinal(this.state, session, outData));
  }
  C_SignRecoverInit(_session: Handle, _mechanism: Mechanism, _key: Handle): void {
    this.call("C_SignRecoverInit", notSupported);
  }
  C_SignRecover(_session: Handle, _inData: Buffer, _outData: Buffer): Buffer {
    return this.call("C_SignRecover", notSupported);
  }

  // Verifying signatures and MACs (§5.12)
  C_VerifyInit(session: Handle, mechanism: Mechanism, key: Handle): void {
    this.call("C_VerifyInit", () => signing.verifyInit(this.state, session, mechanism, key));
  }
  C_Verify(session: Handle, inData: Buffer, signature: Buffer): boolean;
  C_Verify(session: Handle, inData: Buffer, signature: Buffer, cb: Callback<boolean>): void;
  C_Verify(session: Handle, inData: Buffer, signature: Buffer, cb?: Callback<boolean>): boolean | void {
    const body = (): boolean => signing.verify(this.state, session, inData, signature);
    if (typeof cb === "function") return this.callLater("C_Verify", cb, body);
    return this.call("C_Verify", body);
  }
  C_VerifyAsync(session: Handle, inData: Buffer, signature: Buffer): Promise<boolean> {
    return this.callAsync("C_Verify", () => signing.verify(this.state, session, inData, signature));
  }
  C_VerifyUpdate(session: Handle, inData: Buffer): void {
    this.call("C_VerifyUpdate", () => signing.verifyUpdate(this.state, session, inData));
  }
  C_VerifyFinal(session: Handle, signature: Buffer): boolean;
  C_VerifyFinal(session: Handle, signature: Buffer, cb: Callback<boolean>): void;
  C_VerifyFinal(session: Handle, signature: Buffer, cb?: Callback<boolean>): boolean | void {
    const body = (): boolean => signing.verifyFinal(this.state, session, signature);
    if (typeof cb === "function") return this.callLater("C_VerifyFinal", cb, body);
    return this.call("C_VerifyFinal", body);
  }
  C_VerifyFinalAsync(session: Handle, signature: Buffer): Promise<boolean> {
    return this.callAsync("C_VerifyFinal", () => signing.verifyFinal(this.state, session, signature));
  }
  C_VerifyRecoverInit(_session: Handle, _mechanism: Mechanism, _key: Handle): void {
    this.call("C_VerifyRecoverInit", notSupported);
  }
  C_VerifyRecover(_session: Handle, _inData: Buffer, _outData: Buffer): Buffer {
    return this.call("C_VerifyRecover", notSupported);
  }

  // Key management (§5.14)
  C_GenerateKey(session: Handle, mechanism: Mechanism, template: Template): Handle;
  C_GenerateKey(session: Handle, mechanism: Mechanism, template: Template, cb: Callback<Handle>): void;
  C_GenerateKey(session: Handle, mechanism: Mechanism, template: Template, cb?: Callback<Handle>): Handle | void {
    const body = (): Handle => keys.generateKey(this.state, session, mechanism, template);
    if (typeof cb === "function") return this.callLater("C_GenerateKey", cb, body);
    return this.call("C_GenerateKey", body);
  }
  C_GenerateKeyAsync(session: Handle, mechanism: Mechanism, template: Template): Promise<Handle> {
    return this.callAsync("C_GenerateKey", () => keys.generateKey(this.state, session, mechanism, template));
  }
  C_GenerateKeyPair(session: Handle, mechanism: Mechanism, publicKeyTemplate: Template, privateKeyTemplate: Template): KeyPair;
  C_GenerateKeyPair(session: Handle, mechanism: Mechanism, publicKeyTemplate: Template, privateKeyTemplate: Template, cb: Callback<KeyPair>): void;
  C_GenerateKeyPair(session: Handle, mechanism: Mechanism, publicKeyTemplate: Template, privateKeyTemplate: Template, cb?: Callback<KeyPair>): KeyPair | void {
    const body = (): KeyPair => keys.generateKeyPair(this.state, session, mechanism, publicKeyTemplate, privateKeyTemplate);
    if (typeof cb === "function") return this.callLater("C_GenerateKeyPair", cb, body);
    return this.call("C_GenerateKeyPair", body);
  }
  C_GenerateKeyPairAsync(session: Handle, mechanism: Mechanism, publicKeyTemplate: Template, privateKeyTemplate: Template): Promise<KeyPair> {
    return this.callAsync("C_GenerateKeyPair", () => keys.generateKeyPair(this.state, session, mechanism, publicKeyTemplate, privateKeyTemplate));
  }
  C_WrapKey(session: Handle, mechanism: Mechanism, wrappingKey: Handle, key: Handle, wrappedKey: Buffer): Buffer;
  C_WrapKey(session: Handle, mechanism: Mechanism, wrappingKey: Handle, key: Handle, wrappedKey: Buffer, cb: Callback<Buffer>): void;
  C_WrapKey(session: Handle, mechanism: Mechanism, wrappingKey: Handle, key: Handle, wrappedKey: Buffer, cb?: Callback<Buffer>): Buffer | void {
    const body = (): Buffer => keys.wrapKey(this.state, session, mechanism, wrappingKey, key, wrappedKey);
    if (typeof cb === "function") return this.callLater("C_WrapKey", cb, body);
    return this.call("C_WrapKey", body);
  }
  C_WrapKeyAsync(session: Handle, mechanism: Mechanism, wrappingKey: Handle, key: Handle, wrappedKey: Buffer): Promise<Buffer> {
    return this.callAsync("C_WrapKey", () => keys.wrapKey(this.state, session, mechanism, wrappingKey, key, wrappedKey));
  }
  C_UnwrapKey(session: Handle, mechanism: Mechanism, unwrappingKey: Handle, wrappedKey: Buffer, template: Template): Handle;
  C_UnwrapKey(session: Handle, mechanism: Mechanism, unwrappingKey: Handle, wrappedKey: Buffer, template: Template, cb: Callback<Handle>): void;
  C_UnwrapKey(session: Handle, mechanism: Mechanism, unwrappingKey: Handle, wrappedKey: Buffer, template: Template, cb?: Callback<Handle>): Handle | void {
    const body = (): Handle => keys.unwrapKey(this.state, session, mechanism, unwrappingKey, wrappedKey, template);
    if (typeof cb === "function") return this.callLater("C_UnwrapKey", cb, body);
    return this.call("C_UnwrapKey", body);
  }
  C_UnwrapKeyAsync(session: Handle, mechanism: Mechanism, unwrappingKey: Handle, wrappedKey: Buffer, template: Template): Promise<Handle> {
    return this.callAsync("C_UnwrapKey", () => keys.unwrapKey(this.state, session, mechanism, unwrappingKey, wrappedKey, template));
  }
  C_DeriveKey(session: Handle, mechanism: Mechanism, key: Handle, template: Template): Handle;
  C_DeriveKey(session: Handle, mechanism: Mechanism, key: Handle, template: Template, cb: Callback<Handle>): void;
  C_DeriveKey(session: Handle, mechanism: Mechanism, key: Handle, template: Template, cb?: Callback<Handle>): Handle | void {
    const body = (): Handle => keys.deriveKey(this.state, session, mechanism, key, template);
    if (typeof cb === "function") return this.callLater("C_DeriveKey", cb, body);
    return this.call("C_DeriveKey", body);
  }
  C_DeriveKeyAsync(session: Handle, mechanism: Mechanism, key: Handle, template: Template): Promise<Handle> {
    return this.callAsync("C_DeriveKey", () => keys.deriveKey(this.state, session, mechanism, key, template));
  }

  // Random number generation (§5.15)
  C_SeedRandom(session: Handle, buf: Buffer): void {
    this.call("C_SeedRandom", () => random.seedRandom(this.state, session, buf));
  }
  C_GenerateRandom(session: Handle, buf: Buffer): Buffer {
    return this.call("C_GenerateRandom", () => random.generateRandom(this.state, session, buf));
  }

  // Dual-function cryptographic operations (§5.13): not offered, as SoftHSMv2 does not offer them.
  C_DigestEncryptUpdate(session: Handle, inData: Buffer, outData: Buffer): Buffer;
  C_DigestEncryptUpdate(session: Handle, inData: Buffer, outData: Buffer, cb: Callback<Buffer>): void;
  C_DigestEncryptUpdate(_session: Handle, _inData: Buffer, _outData: Buffer, cb?: Callback<Buffer>): Buffer | void {
    return this.dual("C_DigestEncryptUpdate", cb);
  }
  C_DigestEncryptUpdateAsync(_session: Handle, _inData: Buffer, _outData: Buffer): Promise<Buffer> {
    return this.callAsync("C_DigestEncryptUpdate", notSupported);
  }
  C_DecryptDigestUpdate(session: Handle, inData: Buffer, outData: Buffer): Buffer;
  C_DecryptDigestUpdate(session: Handle, inData: Buffer, outData: Buffer, cb: Callback<Buffer>): void;
  C_DecryptDigestUpdate(_session: Handle, _inData: Buffer, _outData: Buffer, cb?: Callback<Buffer>): Buffer | void {
    return this.dual("C_DecryptDigestUpdate", cb);
  }
  C_DecryptDigestUpdateAsync(_session: Handle, _inData: Buffer, _outData: Buffer): Promise<Buffer> {
    return this.callAsync("C_DecryptDigestUpdate", notSupported);
  }
  C_SignEncryptUpdate(session: Handle, inData: Buffer, outData: Buffer): Buffer;
  C_SignEncryptUpdate(session: Handle, inData: Buffer, outData: Buffer, cb: Callback<Buffer>): void;
  C_SignEncryptUpdate(_session: Handle, _inData: Buffer, _outData: Buffer, cb?: Callback<Buffer>): Buffer | void {
    return this.dual("C_SignEncryptUpdate", cb);
  }
  C_SignEncryptUpdateAsync(_session: Handle, _inData: Buffer, _outData: Buffer): Promise<Buffer> {
    return this.callAsync("C_SignEncryptUpdate", notSupported);
  }
  C_DecryptVerifyUpdate(session: Handle, inData: Buffer, outData: Buffer): Buffer;
  C_DecryptVerifyUpdate(session: Handle, inData: Buffer, outData: Buffer, cb: Callback<Buffer>): void;
  C_DecryptVerifyUpdate(_session: Handle, _inData: Buffer, _outData: Buffer, cb?: Callback<Buffer>): Buffer | void {
    return this.dual("C_DecryptVerifyUpdate", cb);
  }
  C_DecryptVerifyUpdateAsync(_session: Handle, _inData: Buffer, _outData: Buffer): Promise<Buffer> {
    return this.callAsync("C_DecryptVerifyUpdate", notSupported);
  }

  private dual(method: string, cb?: Callback<Buffer>): Buffer | void {
    if (typeof cb === "function") return this.callLater(method, cb, notSupported);
    return this.call(method, notSupported);
  }
}

function notSupported(): never {
  throw new CkrError(pkcs11.CKR_FUNCTION_NOT_SUPPORTED);
}
