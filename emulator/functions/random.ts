/**
 * Random number generation, PKCS#11 v2.40 §5.15, over the native CTR_DRBG: C_SeedRandom mixes the
 * caller's bytes in as additional input to a reseed (SP 800-90A §9.2), never replacing entropy.
 */
import { randomFill, reseed } from "../../src/crypto/random.js";
import { native, type NativeErrorMeaning } from "../mechanisms/native-errors.js";
import { pkcs11 } from "../pkcs11.js";
import type { ModuleState } from "../state.js";
import { bufferArg } from "./common.js";

const P = pkcs11;
const RANDOM_ERRORS: NativeErrorMeaning = { invalidArgument: P.CKR_ARGUMENTS_BAD };

export function seedRandom(state: ModuleState, sessionHandle: unknown, seed: unknown): void {
  state.session(sessionHandle);
  const bytes = bufferArg(seed, "seed");
  native(RANDOM_ERRORS, () => reseed(bytes));
}

export function generateRandom(state: ModuleState, sessionHandle: unknown, out: unknown): Buffer {
  state.session(sessionHandle);
  const target = bufferArg(out, "buffer");
  native(RANDOM_ERRORS, () => randomFill(target));
  return target;
}
