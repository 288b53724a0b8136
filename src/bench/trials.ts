/**
 * The trials table: every --mech family with its operations, and the expansion of a run's options
 * into trials (family × operation × key length × size), in a fixed order so that threads and
 * targets meet the same trial at the same index.
 */
import { cbc } from "./ops/cbc.js";
import { find } from "./ops/find.js";
import { gcmCallerIv, gcmTokenIv, gcmZeroIv } from "./ops/gcm.js";
import { hmac } from "./ops/hmac.js";
import { kw, kwp } from "./ops/keywrap.js";
import { random } from "./ops/random.js";
import { ecdsa, rsa } from "./ops/signature.js";
import { sha256, sha512 } from "./ops/digest.js";
import { BenchError, type Operation, type TrialSpec } from "./types.js";

export const OPERATIONS: readonly Operation[] = [
  gcmCallerIv, gcmTokenIv, gcmZeroIv, cbc, kw, kwp, hmac, sha256, sha512, rsa, ecdsa, random, find,
];

export function operation(mech: string): Operation {
  const found = OPERATIONS.find((o) => o.mech === mech);
  if (found === undefined) throw new BenchError(`unknown mechanism "${mech}"; choose from ${OPERATIONS.map((o) => o.mech).join(", ")}`, 2);
  return found;
}

/**
 * Parses a --mech list: `NAME[@KEYBITS[/KEYBITS…]]` items separated by commas, e.g.
 * `aes-gcm,rsa@2048/3072,ecdsa@256`. `all` means every family at its default key length.
 */
export function parseMechs(list: string): Array<{ operation: Operation; keyBits: number[] }> {
  const items = list.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  if (items.length === 0) throw new BenchError("--mech needs at least one mechanism", 2);
  if (items.length === 1 && items[0] === "all") return OPERATIONS.map((o) => ({ operation: o, keyBits: [o.defaultKeyBits] }));
  return items.map((item) => {
    const [name, bits] = item.split("@") as [string, string | undefined];
    const op = operation(name.toLowerCase());
    if (bits === undefined) return { operation: op, keyBits: [op.defaultKeyBits] };
    const keyBits = bits.split("/").map((b) => Number(b));
    for (const b of keyBits) {
      if (!op.keyBits.includes(b)) throw new BenchError(`${op.mech}: key length "${b}" is not one of ${op.keyBits.join(", ")}`, 2);
    }
    return { operation: op, keyBits };
  });
}

export function parseSizes(list: string): number[] {
  const sizes = list.split(",").map((s) => s.trim()).filter((s) => s.length > 0).map((s) => {
    const match = /^(\d+)([kKmM]?)$/u.exec(s);
    if (match === null) throw new BenchError(`--sizes: "${s}" is not a byte count (e.g. 64,1k,16k,1m)`, 2);
    const unit = match[2]!.toLowerCase();
    return Number(match[1]) * (unit === "k" ? 1024 : unit === "m" ? 1 << 20 : 1);
  });
  if (sizes.length === 0) throw new BenchError("--sizes needs at least one size", 2);
  for (const size of sizes) if (size < 1 || size > 64 << 20) throw new BenchError(`--sizes: ${size} is outside 1..67108864 bytes`, 2);
  return sizes;
}

export function expandTrials(mechs: Array<{ operation: Operation; keyBits: number[] }>, sizes: number[]): TrialSpec[] {
  const trials: TrialSpec[] = [];
  for (const { operation: op, keyBits } of mechs) {
    for (const bits of keyBits) {
      for (const sub of op.ops) {
        for (const bytes of op.sized ? sizes : [op.fixedBytes ?? 0]) trials.push({ mech: op.mech, op: sub, bytes, keyBits: bits });
      }
    }
  }
  return trials;
}
