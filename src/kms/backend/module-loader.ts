/**
 * PKCS#11 modules, loaded and initialized once and shared by every backend of this thread.
 *
 * A PKCS#11 library is a process-wide singleton: C_Initialize and C_Finalize act on the whole
 * process, and a library initialized without locking crashes or corrupts its token when used from
 * several threads (shared/reference/pkcs11.md §4, measured with SoftHSMv2 in worker_threads). So:
 * - a module is initialized once, with CKF_OS_LOCKING_OK, and then shared (reference-counted) by
 *   every backend that names the same module — the same .so path or the same emulator object;
 * - CKR_CRYPTOKI_ALREADY_INITIALIZED means someone else in the process (another thread, a test
 *   fixture, the host application) initialized it: the module is used as it is and never finalized
 *   by us;
 * - C_Finalize happens only when the last lease is released, only if this thread initialized the
 *   module, and only on the main thread: a worker thread never finalizes, because other threads may
 *   still be using the library. With worker threads, open a backend on the main thread first and
 *   keep it open for as long as the workers run.
 *
 * The registry is per JavaScript realm (each worker thread has its own), which is why the rules
 * above are about the process and not about this map.
 */
import { realpathSync } from "node:fs";
import { isMainThread } from "node:worker_threads";
import { ckrOf, graphene, pkcs11, type Module, type PKCS11 } from "./pkcs11.js";

/** A PKCS#11 module: the path of a shared library (SoftHSMv2, a vendor HSM), or a pkcs11js-shaped object (the emulator). */
export type ModuleSource = string | PKCS11;

/** A backend's hold on a module; release it exactly once. */
export interface ModuleLease {
  readonly module: Module;
  /** "emulator" for an in-process object, else the library's resolved path. */
  readonly source: string;
  /** Whether this thread's C_Initialize is the one that initialized the module. */
  readonly initializedHere: boolean;
  release(): void;
}

interface Entry {
  module: Module;
  source: string;
  initializedHere: boolean;
  /** pkcs11js instance loaded by us (a .so) that must be unloaded at the end; absent for caller-owned objects. */
  unload: (() => void) | undefined;
  leases: number;
}

const byPath = new Map<string, Entry>();
const byObject = new Map<object, Entry>();
/**
 * Modules released without being finalized (initialized elsewhere, or on a worker thread). pkcs11js
 * unloads its library when its object is garbage-collected, which would pull an initialized library
 * out from under its other users; holding the object keeps our reference to it for the process.
 */
const retained: Module[] = [];

/**
 * C_Initialize with CKF_OS_LOCKING_OK; true when this call initialized the module, false when it
 * already was (CKR_CRYPTOKI_ALREADY_INITIALIZED). graphene's Module.initialize hides that
 * difference, so the call goes to the library graphene holds.
 */
function initialize(module: Module): boolean {
  const lib = (module as unknown as { lib: PKCS11 }).lib;
  let initializedHere = true;
  try {
    lib.C_Initialize({ flags: pkcs11.CKF_OS_LOCKING_OK });
  } catch (error) {
    if (ckrOf(error)?.rv !== pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) throw error;
    initializedHere = false;
  }
  // C_GetInfo: fills graphene's manufacturerID, libraryDescription, libraryVersion.
  (module as unknown as { getInfo(): void }).getInfo();
  return initializedHere;
}

/**
 * Takes a lease on a module, loading and initializing it on first use in this thread. Throws the
 * library's error (a PKCS#11 failure or a load error) unchanged; the backend turns it into a
 * KmsError.
 */
export function acquireModule(source: ModuleSource): ModuleLease {
  let entry: Entry | undefined;
  if (typeof source === "string") {
    const path = realpathSync(source);
    entry = byPath.get(path);
    if (entry === undefined) {
      const module = graphene.Module.load(path);
      let initializedHere: boolean;
      try {
        initializedHere = initialize(module);
      } catch (error) {
        module.close();
        throw error;
      }
      entry = { module, source: path, initializedHere, unload: () => module.close(), leases: 0 };
      byPath.set(path, entry);
    }
  } else {
    entry = byObject.get(source);
    if (entry === undefined) {
      const module = new graphene.Module(source);
      entry = { module, source: "emulator", initializedHere: initialize(module), unload: undefined, leases: 0 };
      byObject.set(source, entry);
    }
  }
  entry.leases++;
  const held = entry;
  let released = false;
  return {
    module: held.module,
    source: held.source,
    initializedHere: held.initializedHere,
    release() {
      if (released) return;
      released = true;
      if (--held.leases > 0) return;
      if (typeof source === "string") byPath.delete(held.source);
      else byObject.delete(source);
      finish(held);
    },
  };
}

/** The last lease is gone: finalize if we may (see the file comment), then unload what we loaded. */
function finish(entry: Entry): void {
  try {
    if (entry.initializedHere && isMainThread) entry.module.finalize();
  } catch {
    // Already finalized by its owner (e.g. the emulator closed first): nothing left to do.
  } finally {
    // A library we finalized is unloaded; one still initialized elsewhere stays loaded for the process.
    if (entry.initializedHere && isMainThread) entry.unload?.();
    else if (entry.unload !== undefined) retained.push(entry.module);
  }
}
