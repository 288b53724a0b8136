/**
 * The SP 800-90A CTR_DRBG mechanism (native/drbg.cc) against every AES record of NIST's CAVP
 * response files (no_reseed, pr_false, pr_true; AES-128/192/256; with and without the
 * derivation function), against an independent reference written here over node:crypto for
 * the lengths CAVP does not cover (partial blocks, 64 KiB requests), and its error behaviour.
 */
import test from "ava";
import { createCipheriv } from "node:crypto";

import {
  CTR_DRBG_MAX_REQUEST_BYTES,
  InsecureCtrDrbgForTesting,
  insecureDeterministicRandomForTesting,
} from "../../src/crypto/testing.js";
import {
  DRBG_VECTOR_FILES,
  TDEA_SKIP_REASON,
  loadCtrDrbgVectors,
  type CtrDrbgRecord,
  type CtrDrbgSection,
  type CtrDrbgVectorFile,
} from "../vectors/nist-drbg.js";

// ---- CAVP known answers ----

/** Runs one record as CAVS does and returns the second generate's output. */
function runRecord(section: CtrDrbgSection, record: CtrDrbgRecord): Buffer {
  const drbg = new InsecureCtrDrbgForTesting({
    keyLength: section.keyLength as 16 | 24 | 32,
    derivationFunction: section.derivationFunction,
  });
  drbg.instantiate(
    record.entropyInput,
    section.derivationFunction ? record.nonce : undefined,
    record.personalizationString,
  );
  if (record.reseed) drbg.reseed(record.reseed.entropyInput, record.reseed.additionalInput);
  let output: Buffer = Buffer.alloc(0);
  for (const step of record.generates) {
    if (step.entropyInputPR !== undefined) {
      // SP 800-90A §9.3.1: a prediction-resistant request reseeds with fresh entropy and the
      // request's additional input, then generates with no additional input.
      drbg.reseed(step.entropyInputPR, step.additionalInput);
      output = drbg.generate(record.returnedBits.length);
    } else {
      output = drbg.generate(record.returnedBits.length, step.additionalInput);
    }
  }
  drbg.uninstantiate();
  return output;
}

let vectorFiles: CtrDrbgVectorFile[] | Error;
try {
  vectorFiles = DRBG_VECTOR_FILES.map((file) => loadCtrDrbgVectors(file));
} catch (error) {
  vectorFiles = error instanceof Error ? error : new Error(String(error));
}

if (vectorFiles instanceof Error) {
  const failure = vectorFiles;
  test("NIST CAVP CTR_DRBG vectors are present", (t) => {
    t.fail(`cannot load the NIST CTR_DRBG vectors: ${failure.message}`);
  });
} else {
  for (const vectors of vectorFiles) {
    test(`CAVP ${vectors.file}: the parser read every record`, (t) => {
      const parsed = vectors.sections.reduce((sum, section) => sum + section.records.length, 0);
      t.is(parsed, vectors.countLines, "records parsed vs COUNT lines in the file");
      t.log(`${vectors.path}: ${parsed} records in ${vectors.sections.length} groups`);
    });

    // Groups (one per set of input lengths) share a section name; test per name.
    const byName = new Map<string, CtrDrbgSection[]>();
    for (const section of vectors.sections) byName.set(section.name, [...(byName.get(section.name) ?? []), section]);

    for (const [name, groups] of byName) {
      const first = groups[0];
      if (first === undefined) continue;
      if (first.cipher === "3KeyTDEA") {
        test(`CAVP ${vectors.file} [${name}]: skipped`, (t) => {
          const records = groups.reduce((sum, group) => sum + group.records.length, 0);
          t.log(`skipped ${records} records: ${TDEA_SKIP_REASON}`);
          t.pass();
        });
        continue;
      }
      test(`CAVP ${vectors.file} [${name}]`, (t) => {
        let ran = 0;
        const failures: string[] = [];
        for (const group of groups) {
          for (const record of group.records) {
            ran++;
            const output = runRecord(group, record);
            if (!output.equals(record.returnedBits)) {
              failures.push(
                `COUNT ${record.count} (EntropyInputLen ${group.parameters["EntropyInputLen"]}, ` +
                  `PersonalizationStringLen ${group.parameters["PersonalizationStringLen"]}, ` +
                  `AdditionalInputLen ${group.parameters["AdditionalInputLen"]})`,
              );
            }
          }
        }
        t.log(`${vectors.file} [${name}]: ${ran - failures.length}/${ran} records passed`);
        t.deepEqual(failures, [], `mismatching records in ${vectors.file} [${name}]`);
        // SOURCE.md: 16 groups of 15 records per section.
        t.is(ran, 240);
      });
    }
  }
}

// ---- An independent reference, for lengths the CAVP files do not exercise ----

/** SP 800-90A §10.2.1 written plainly over node:crypto's AES-ECB, one block at a time. */
class ReferenceCtrDrbg {
  private key: Buffer;
  private v = Buffer.alloc(16);
  private readonly seedLength: number;

  constructor(
    private readonly keyLength: number,
    private readonly df: boolean,
  ) {
    this.key = Buffer.alloc(keyLength);
    this.seedLength = keyLength + 16;
  }

  private static encrypt(key: Buffer, block: Buffer): Buffer {
    const cipher = createCipheriv(`aes-${key.length * 8}-ecb`, key, null);
    cipher.setAutoPadding(false);
    return Buffer.concat([cipher.update(block), cipher.final()]);
  }

  private increment(): void {
    for (let i = 15; i >= 0; i--) {
      this.v[i] = ((this.v[i] ?? 0) + 1) & 0xff;
      if (this.v[i] !== 0) break;
    }
  }

  private update(provided: Buffer | null): void {
    const blocks: Buffer[] = [];
    while (blocks.length * 16 < this.seedLength) {
      this.increment();
      blocks.push(ReferenceCtrDrbg.encrypt(this.key, this.v));
    }
    const temp = Buffer.concat(blocks).subarray(0, this.seedLength);
    if (provided) for (let i = 0; i < this.seedLength; i++) temp[i] = (temp[i] ?? 0) ^ (provided[i] ?? 0);
    this.key = Buffer.from(temp.subarray(0, this.keyLength));
    this.v = Buffer.from(temp.subarray(this.keyLength, this.seedLength));
  }

  private derive(input: Buffer): Buffer {
    const header = Buffer.alloc(8);
    header.writeUInt32BE(input.length, 0);
    header.writeUInt32BE(this.seedLength, 4);
    let s = Buffer.concat([header, input, Buffer.from([0x80])]);
    if (s.length % 16 !== 0) s = Buffer.concat([s, Buffer.alloc(16 - (s.length % 16))]);
    const k = Buffer.from(Array.from({ length: this.keyLength }, (_, i) => i));
    const temp: Buffer[] = [];
    for (let i = 0; temp.length * 16 < this.keyLength + 16; i++) {
      const iv = Buffer.alloc(16);
      iv.writeUInt32BE(i, 0);
      let chain: Buffer = Buffer.alloc(16);
      const data = Buffer.concat([iv, s]);
      for (let offset = 0; offset < data.length; offset += 16) {
        const block = Buffer.alloc(16);
        for (let j = 0; j < 16; j++) block[j] = (chain[j] ?? 0) ^ (data[offset + j] ?? 0);
        chain = ReferenceCtrDrbg.encrypt(k, block);
      }
      temp.push(chain);
    }
    const joined = Buffer.concat(temp);
    const key = joined.subarray(0, this.keyLength);
    let x: Buffer = joined.subarray(this.keyLength, this.keyLength + 16);
    const out: Buffer[] = [];
    while (out.length * 16 < this.seedLength) {
      x = ReferenceCtrDrbg.encrypt(key, x);
      out.push(x);
    }
    return Buffer.concat(out).subarray(0, this.seedLength);
  }

  private pad(input: Buffer): Buffer {
    return Buffer.concat([input, Buffer.alloc(this.seedLength - input.length)]);
  }

  instantiate(entropy: Buffer, nonce: Buffer, personalization: Buffer): void {
    const seed = this.df
      ? this.derive(Buffer.concat([entropy, nonce, personalization]))
      : Buffer.from(entropy.map((byte, i) => byte ^ (this.pad(personalization)[i] ?? 0)));
    this.key = Buffer.alloc(this.keyLength);
    this.v = Buffer.alloc(16);
    this.update(seed);
  }

  reseed(entropy: Buffer, additional: Buffer): void {
    const seed = this.df
      ? this.derive(Buffer.concat([entropy, additional]))
      : Buffer.from(entropy.map((byte, i) => byte ^ (this.pad(additional)[i] ?? 0)));
    this.update(seed);
  }

  generate(length: number, additional: Buffer): Buffer {
    let adin: Buffer | null = null;
    if (additional.length > 0) {
      adin = this.df ? this.derive(additional) : this.pad(additional);
      this.update(adin);
    }
    const blocks: Buffer[] = [];
    while (blocks.length * 16 < length) {
      this.increment();
      blocks.push(ReferenceCtrDrbg.encrypt(this.key, this.v));
    }
    this.update(adin);
    return Buffer.concat(blocks).subarray(0, length);
  }
}

for (const keyLength of [16, 24, 32] as const) {
  for (const derivationFunction of [true, false]) {
    test(`CTR_DRBG AES-${keyLength * 8} ${derivationFunction ? "use df" : "no df"} matches the reference for odd lengths and 64 KiB`, (t) => {
      const stream = insecureDeterministicRandomForTesting(`reference ${keyLength} ${derivationFunction}`);
      const seedLength = keyLength + 16;
      const entropy = stream(derivationFunction ? keyLength + 7 : seedLength);
      const nonce = derivationFunction ? stream(keyLength / 2) : Buffer.alloc(0);
      const personalization = stream(derivationFunction ? 37 : 11);
      const native = new InsecureCtrDrbgForTesting({ keyLength, derivationFunction });
      const reference = new ReferenceCtrDrbg(keyLength, derivationFunction);
      native.instantiate(entropy, derivationFunction ? nonce : undefined, personalization);
      reference.instantiate(entropy, nonce, personalization);
      const lengths = [0, 1, 15, 16, 17, 31, 32, 33, 47, 48, 49, 63, 64, 65, 100, 1000, 4095, 4097, CTR_DRBG_MAX_REQUEST_BYTES];
      for (const [i, length] of lengths.entries()) {
        const additional = i % 3 === 0 ? Buffer.alloc(0) : stream(derivationFunction ? 1 + ((i * 13) % 70) : 1 + (i % seedLength));
        t.deepEqual(native.generate(length, additional), reference.generate(length, additional), `length ${length}`);
        if (i % 5 === 4) {
          const fresh = stream(derivationFunction ? keyLength : seedLength);
          const reseedAdditional = stream(i % seedLength);
          native.reseed(fresh, reseedAdditional);
          reference.reseed(fresh, reseedAdditional);
          t.is(native.reseedCounter, 1);
        }
      }
    });
  }
}

// ---- Behaviour ----

test("generate and reseed refuse (ERR_NATIVE_ENTROPY) before instantiate and after uninstantiate", (t) => {
  const drbg = new InsecureCtrDrbgForTesting({ keyLength: 32, derivationFunction: true });
  t.false(drbg.instantiated);
  t.is(drbg.reseedCounter, 0);
  t.throws(() => drbg.generate(16), { code: "ERR_NATIVE_ENTROPY" });
  t.throws(() => drbg.reseed(Buffer.alloc(32, 1)), { code: "ERR_NATIVE_ENTROPY" });
  drbg.instantiate(Buffer.alloc(32, 1), Buffer.alloc(16, 2));
  t.true(drbg.instantiated);
  t.is(drbg.reseedCounter, 1);
  t.is(drbg.generate(16).length, 16);
  t.is(drbg.reseedCounter, 2);
  drbg.uninstantiate();
  t.false(drbg.instantiated);
  t.throws(() => drbg.generate(16), { code: "ERR_NATIVE_ENTROPY" });
});

test("generate reports 'reseed required' once reseed_counter exceeds reseed_interval", (t) => {
  const drbg = new InsecureCtrDrbgForTesting({ keyLength: 16, derivationFunction: true });
  t.is(drbg.reseedInterval, 2 ** 48);
  drbg.reseedInterval = 2;
  drbg.instantiate(Buffer.alloc(16, 7), Buffer.alloc(8, 8));
  drbg.generate(32); // reseed_counter 1 -> 2
  drbg.generate(32); // 2 -> 3
  t.throws(() => drbg.generate(32), { code: "ERR_NATIVE_ENTROPY", message: /reseed required/ });
  drbg.reseed(Buffer.alloc(16, 9));
  t.is(drbg.generate(32).length, 32);
  t.throws(() => {
    drbg.reseedInterval = 0;
  }, { code: "ERR_OUT_OF_RANGE" });
});

test("lengths outside SP 800-90A's bounds are rejected", (t) => {
  const noDf = new InsecureCtrDrbgForTesting({ keyLength: 32, derivationFunction: false });
  t.throws(() => noDf.instantiate(Buffer.alloc(47)), { code: "ERR_NATIVE_INVALID_ARGUMENT" });
  t.throws(() => noDf.instantiate(Buffer.alloc(48), Buffer.alloc(16)), { code: "ERR_NATIVE_INVALID_ARGUMENT" });
  t.throws(() => noDf.instantiate(Buffer.alloc(48), undefined, Buffer.alloc(49)), { code: "ERR_NATIVE_INVALID_ARGUMENT" });
  noDf.instantiate(Buffer.alloc(48, 3));
  t.throws(() => noDf.generate(16, Buffer.alloc(49)), { code: "ERR_NATIVE_INVALID_ARGUMENT" });
  t.throws(() => noDf.reseed(Buffer.alloc(48), Buffer.alloc(49)), { code: "ERR_NATIVE_INVALID_ARGUMENT" });

  const df = new InsecureCtrDrbgForTesting({ keyLength: 32, derivationFunction: true });
  t.throws(() => df.instantiate(Buffer.alloc(31), Buffer.alloc(16)), { code: "ERR_NATIVE_INVALID_ARGUMENT" });
  df.instantiate(Buffer.alloc(32, 4), Buffer.alloc(16, 5));
  t.throws(() => df.generate(CTR_DRBG_MAX_REQUEST_BYTES + 1), { code: "ERR_OUT_OF_RANGE" });
  t.is(df.generate(CTR_DRBG_MAX_REQUEST_BYTES).length, CTR_DRBG_MAX_REQUEST_BYTES);
  t.throws(() => new InsecureCtrDrbgForTesting({ keyLength: 20 as 16, derivationFunction: true }), {
    code: "ERR_INVALID_ARG_VALUE",
  });
});

test("the native CtrDrbg checks its own arguments", async (t) => {
  const { addon } = await import("../../src/crypto/addon.js");
  t.throws(() => new addon.CtrDrbg(20, true), { code: "ERR_NATIVE_INVALID_ARGUMENT" });
  const drbg = new addon.CtrDrbg(32, true);
  drbg.instantiate(Buffer.alloc(32, 1), null, null);
  t.throws(() => drbg.generate(Buffer.alloc(CTR_DRBG_MAX_REQUEST_BYTES + 1), null), {
    code: "ERR_NATIVE_INVALID_ARGUMENT",
  });
  t.throws(() => drbg.generate("x" as unknown as Uint8Array, null), { code: "ERR_NATIVE_INVALID_ARGUMENT" });
});

test("the key handle's and the CtrDrbg's accessors refuse another native object as their receiver", async (t) => {
  // V8 checks the receiver of a native prototype method but not of an accessor: without a check of
  // its own, each class read (or, through the setter, wrote) the other's native state as its own.
  const { addon } = await import("../../src/crypto/addon.js");
  const key = addon.importKey(Buffer.alloc(32, 0xab));
  const drbg = new addon.CtrDrbg(32, true);
  const hmac = new addon.HmacOperation(key, 0, 20);
  const accessor = (object: object, name: string): PropertyDescriptor => Object.getOwnPropertyDescriptor(Object.getPrototypeOf(object), name)!;
  const refused = { code: "ERR_NATIVE_INVALID_ARGUMENT" };
  for (const name of ["length", "destroyed"]) {
    for (const receiver of [drbg, hmac]) t.throws(() => accessor(key, name).get!.call(receiver), refused, `key.${name} on another object`);
  }
  for (const name of ["reseedCounter", "instantiated", "reseedInterval"]) {
    for (const receiver of [key, hmac]) t.throws(() => accessor(drbg, name).get!.call(receiver), refused, `CtrDrbg.${name} on another object`);
  }
  t.throws(() => accessor(drbg, "reseedInterval").set!.call(key, 5), refused);
  // Each still works on its own kind, and the key is untouched.
  t.is(key.length, 32);
  t.false(key.destroyed);
  t.true(key.exportBytes().equals(Buffer.alloc(32, 0xab)));
  t.is(drbg.reseedCounter, 0);
  t.false(drbg.instantiated);
  drbg.reseedInterval = 7;
  t.is(drbg.reseedInterval, 7);
  hmac.abort();
  key.destroy();
});

test("insecureDeterministicRandomForTesting is deterministic per seed and splits large requests", (t) => {
  const a = insecureDeterministicRandomForTesting("seed one");
  const b = insecureDeterministicRandomForTesting("seed one");
  const c = insecureDeterministicRandomForTesting(Buffer.from("seed two"));
  const first = a(100_000);
  t.deepEqual(first, b(100_000));
  t.notDeepEqual(first.subarray(0, 32), c(32));
  t.notDeepEqual(a(32), first.subarray(0, 32), "the stream moves on");
  t.is(a(0).length, 0);
});
