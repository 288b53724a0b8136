/**
 * Blob v1 through a real backend, one body for every token (registered by envelope-emulator.test.ts
 * and envelope-softhsm.test.ts): round trips, every single-bit change, other keys, versions,
 * purposes and contexts, IV handling, and open() under arbitrary input.
 */
import test, { type ExecutionContext } from "ava";
import fc from "fast-check";
import type { KmsBackend, VersionRef } from "../../src/kms/backend/backend.js";
import { DEFAULT_ROOT_KEY_LABEL } from "../../src/kms/backend/graphene.js";
import { pkcs11, type Key } from "../../src/kms/backend/pkcs11.js";
import { KmsError } from "../../src/kms/errors.js";
import { BLOB_OVERHEAD_BYTES, Envelope, HEADER_BYTES, encodeHeader, parseBlob, type BlobHeader, type SealTarget } from "../../src/kms/envelope/blob.js";
import type { BoundContext } from "../../src/kms/envelope/context.js";
import type { TokenFixture, TokenHarness } from "./backend-fixtures.js";
import { throwsKms } from "./backend-scenarios.js";

const KEY_A = "0d0466b0-e727-4d9c-b35d-f84bb474a37f";
const KEY_B = "5f0cb5c9-6fb7-4a3e-9c8e-2b1a9d7e4c10";

/** A small key store: CMK versions by (key id, version), the way the service resolves a blob. */
class Keys {
  private readonly versions = new Map<string, VersionRef>();
  constructor(private readonly backend: KmsBackend) {}
  add(keyId: string, version: number): SealTarget {
    const key = { id: `${keyId}:${version}`, wrapped: this.backend.createVersionKey() };
    this.versions.set(key.id, key);
    return { keyId, version, key };
  }
  readonly resolve = (header: BlobHeader): VersionRef | undefined => this.versions.get(`${header.keyId}:${header.version}`);
}

function flip(bytes: Uint8Array, bit: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[bit >> 3]! ^= 1 << (bit & 7);
  return copy;
}

interface Scenario {
  title: string;
  run(t: ExecutionContext, harness: TokenHarness): void;
}

/**
 * The worked example of docs/ciphertext-format.md §6, computed there with node:crypto from the
 * specification alone: a known version key, a fixed IV, a context.
 */
export const VECTOR = {
  key: Buffer.from("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "hex"),
  keyId: "0d0466b0-e727-4d9c-b35d-f84bb474a37f",
  version: 1,
  iv: Buffer.from("101112131415161718191a1b", "hex"),
  purpose: "data" as const,
  bound: { encryptionContext: { object: "cat.jpg", bucket: "photos" } },
  plaintext: Buffer.from("hello, hsmkit"),
  blob: Buffer.from(
    "484b010d0466b0e7274d9cb35df84bb474a37f00000001101112131415161718191a1b" + "159bf47a26e51adbb91863747b" + "15a084705147ba06ba6f57e9af35bdc0", "hex"),
};

const SCENARIOS: Scenario[] = [
  {
    title: "the worked example of docs/ciphertext-format.md: a known key sealed and opened in the token gives the documented bytes",
    run(t, harness) {
      const backend = harness.open();
      // Import the known key and wrap it under the root key, as if the token had generated it.
      const wrapped = harness.withSession((session) => {
        const root = session.find({ class: pkcs11.CKO_SECRET_KEY, token: true, label: DEFAULT_ROOT_KEY_LABEL }).items(0);
        const known = session.create({
          class: pkcs11.CKO_SECRET_KEY, keyType: pkcs11.CKK_AES, value: VECTOR.key, token: false, sensitive: false, extractable: true,
          encrypt: false, decrypt: false, wrap: false, unwrap: false, sign: false, verify: false, derive: false,
        });
        try {
          return session.wrapKey({ name: pkcs11.CKM_AES_KEY_WRAP_PAD, params: null }, root as unknown as Key, known as unknown as Key);
        } finally {
          known.destroy();
        }
      });
      const fixedIv: Pick<KmsBackend, "encrypt" | "decrypt" | "random"> = {
        encrypt: (...args) => backend.encrypt(...args),
        decrypt: (...args) => backend.decrypt(...args),
        random: () => Buffer.from(VECTOR.iv),
      };
      const key = { id: "vector:1", wrapped };
      const envelope = new Envelope(fixedIv, { ivBatch: 1 });
      const blob = envelope.seal({ keyId: VECTOR.keyId, version: VECTOR.version, key }, VECTOR.purpose, VECTOR.plaintext, VECTOR.bound);
      t.is(blob.toString("hex"), VECTOR.blob.toString("hex"));
      t.deepEqual(envelope.open(VECTOR.blob, "data", () => key, VECTOR.bound).plaintext, VECTOR.plaintext);
    },
  },
  {
    title: "round trips for every size class, both purposes, with and without AAD and context",
    run(t, harness) {
      const backend = harness.open();
      const keys = new Keys(backend);
      const envelope = new Envelope(backend);
      const a1 = keys.add(KEY_A, 1);
      const contexts: Array<BoundContext | undefined> = [
        undefined, { additionalAuthenticatedData: "order-42" }, { encryptionContext: { bucket: "photos", object: "cat.jpg" } },
        { additionalAuthenticatedData: "x", encryptionContext: { "ключ": "значение", "\u{1F511}": "" } },
      ];
      for (const size of [1, 2, 15, 16, 17, 100, 1024, 4095, 4096]) {
        for (const purpose of ["data", "datakey"] as const) {
          for (const bound of contexts) {
            const plaintext = backend.random(size);
            const blob = envelope.seal(a1, purpose, plaintext, bound);
            t.is(blob.length, size + BLOB_OVERHEAD_BYTES);
            const header = parseBlob(blob);
            t.is(header.keyId, KEY_A);
            t.is(header.version, 1);
            const opened = envelope.open(blob, purpose, keys.resolve, bound);
            t.deepEqual(opened, { keyId: KEY_A, version: 1, plaintext });
          }
        }
      }
      throwsKms(t, () => envelope.seal(a1, "data", Buffer.alloc(0)), "KMS.2101");
      throwsKms(t, () => envelope.seal(a1, "data", Buffer.alloc(4097)), "KMS.2101");
    },
  },
  {
    title: "every single-bit change of a small blob is rejected with KMS.2201 (all 416 bit positions), as is every truncation and extension",
    run(t, harness) {
      const backend = harness.open();
      const keys = new Keys(backend);
      const envelope = new Envelope(backend);
      const target = keys.add(KEY_A, 3);
      // A second version of the same key and the same version number of another key exist, so that
      // changed header bits can name a key the resolver knows.
      keys.add(KEY_A, 2);
      keys.add(KEY_B, 3);
      const bound = { encryptionContext: { tenant: "t1" } };
      const blob = envelope.seal(target, "data", Buffer.from([0x5a]), bound);
      t.is(blob.length, 52);
      let rejected = 0;
      for (let bit = 0; bit < blob.length * 8; bit++) {
        const error = t.throws(() => envelope.open(flip(blob, bit), "data", keys.resolve, bound), { instanceOf: KmsError });
        if (error?.code === "KMS.2201") rejected++;
        else t.fail(`bit ${bit}: ${error?.code}`);
      }
      t.is(rejected, 416);
      for (let length = 0; length < blob.length; length++) {
        throwsKms(t, () => envelope.open(blob.subarray(0, length), "data", keys.resolve, bound), "KMS.2201");
      }
      throwsKms(t, () => envelope.open(Buffer.concat([blob, Buffer.alloc(1)]), "data", keys.resolve, bound), "KMS.2201");
      t.deepEqual(envelope.open(blob, "data", keys.resolve, bound).plaintext, Buffer.from([0x5a]));
    },
  },
  {
    title: "a blob cannot be moved to another key, version, purpose or context",
    run(t, harness) {
      const backend = harness.open();
      const keys = new Keys(backend);
      const envelope = new Envelope(backend);
      const a1 = keys.add(KEY_A, 1);
      const a2 = keys.add(KEY_A, 2);
      const b1 = keys.add(KEY_B, 1);
      const bound: BoundContext = { additionalAuthenticatedData: "aad", encryptionContext: { tenant: "t1", path: "/a" } };
      const blob = envelope.seal(a1, "data", Buffer.from("secret"), bound);
      const header = parseBlob(blob);
      const rehead = (keyId: string, version: number): Buffer => Buffer.concat([encodeHeader({ keyId, version, iv: header.iv }), blob.subarray(HEADER_BYTES)]);
      const attempts: Array<[string, () => unknown]> = [
        ["header names key B", () => envelope.open(rehead(KEY_B, 1), "data", keys.resolve, bound)],
        ["header names version 2", () => envelope.open(rehead(KEY_A, 2), "data", keys.resolve, bound)],
        ["store swapped in B's key", () => envelope.open(blob, "data", () => b1.key, bound)],
        ["store swapped in version 2's key", () => envelope.open(blob, "data", () => a2.key, bound)],
        ["key unknown to the caller (e.g. another project's)", () => envelope.open(blob, "data", () => undefined, bound)],
        ["other purpose", () => envelope.open(blob, "datakey", keys.resolve, bound)],
        ["no context", () => envelope.open(blob, "data", keys.resolve)],
        ["AAD only", () => envelope.open(blob, "data", keys.resolve, { additionalAuthenticatedData: "aad" })],
        ["context only", () => envelope.open(blob, "data", keys.resolve, { encryptionContext: bound.encryptionContext })],
        ["changed value", () => envelope.open(blob, "data", keys.resolve, { ...bound, encryptionContext: { tenant: "t2", path: "/a" } })],
        ["key case", () => envelope.open(blob, "data", keys.resolve, { ...bound, encryptionContext: { Tenant: "t1", path: "/a" } })],
        ["extra pair", () => envelope.open(blob, "data", keys.resolve, { ...bound, encryptionContext: { tenant: "t1", path: "/a", x: "" } })],
        ["missing pair", () => envelope.open(blob, "data", keys.resolve, { ...bound, encryptionContext: { tenant: "t1" } })],
        ["AAD as context", () => envelope.open(blob, "data", keys.resolve, { encryptionContext: { aad: "", tenant: "t1", path: "/a" } })],
      ];
      for (const [what, attempt] of attempts) {
        const error = t.throws(attempt, { instanceOf: KmsError }, what);
        t.is(error?.code, "KMS.2201", what);
      }
      // Only the order of the context's pairs may differ.
      const reordered = { additionalAuthenticatedData: "aad", encryptionContext: { path: "/a", tenant: "t1" } };
      t.is(envelope.open(blob, "data", keys.resolve, reordered).plaintext.toString(), "secret");
    },
  },
  {
    title: "IVs come from the token in batches, each used once",
    run(t, harness) {
      const backend = harness.open();
      let draws = 0;
      const counting: Pick<KmsBackend, "encrypt" | "decrypt" | "random"> = {
        encrypt: (...args) => backend.encrypt(...args),
        decrypt: (...args) => backend.decrypt(...args),
        random: (length) => {
          draws++;
          return backend.random(length);
        },
      };
      const keys = new Keys(backend);
      const target = keys.add(KEY_A, 1);
      const envelope = new Envelope(counting, { ivBatch: 8 });
      const ivs = new Set<string>();
      for (let i = 0; i < 100; i++) ivs.add(parseBlob(envelope.seal(target, "data", Buffer.from("m"))).iv.toString("hex"));
      t.is(ivs.size, 100);
      t.is(draws, Math.ceil(100 / 8));
      const single = new Envelope(counting, { ivBatch: 1 });
      draws = 0;
      single.seal(target, "data", Buffer.from("m"));
      single.seal(target, "data", Buffer.from("m"));
      t.is(draws, 2);
      t.throws(() => new Envelope(backend, { ivBatch: 0 }), { instanceOf: RangeError });
    },
  },
  {
    title: "the caller's context is validated before the blob; the resolver's own errors pass through",
    run(t, harness) {
      const backend = harness.open();
      const keys = new Keys(backend);
      const envelope = new Envelope(backend);
      const blob = envelope.seal(keys.add(KEY_A, 1), "data", Buffer.from("x"));
      throwsKms(t, () => envelope.open(Buffer.from("garbage"), "data", keys.resolve, { encryptionContext: { k: 1 as unknown as string } }), "KMS.0208");
      throwsKms(t, () => envelope.open(blob, "data", () => {
        throw new KmsError("KMS.0209", "disabled");
      }), "KMS.0209");
    },
  },
  {
    title: "fast-check: open() under arbitrary and mutated blobs throws only KMS.2201",
    run(t, harness) {
      const backend = harness.open();
      const keys = new Keys(backend);
      const envelope = new Envelope(backend);
      const target = keys.add(KEY_A, 1);
      keys.add(KEY_B, 1);
      const blob = envelope.seal(target, "data", Buffer.from("fuzz me"), { encryptionContext: { a: "b" } });
      const mutated = fc.tuple(fc.array(fc.tuple(fc.nat(blob.length - 1), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }), fc.nat(8))
        .map(([edits, cut]) => {
          const copy = Buffer.from(blob);
          for (const [at, xor] of edits) copy[at]! ^= xor;
          return copy.subarray(0, copy.length - cut);
        });
      const input = fc.oneof(mutated, fc.uint8Array({ maxLength: 300 }));
      fc.assert(fc.property(input, (bytes) => {
        try {
          envelope.open(bytes, "data", keys.resolve, { encryptionContext: { a: "b" } });
          return false;
        } catch (error) {
          return error instanceof KmsError && error.code === "KMS.2201";
        }
      }), { numRuns: 300 });
      t.is(envelope.open(blob, "data", keys.resolve, { encryptionContext: { a: "b" } }).plaintext.toString(), "fuzz me");
    },
  },
];

export function registerEnvelopeScenarios(fixture: TokenFixture): void {
  for (const scenario of SCENARIOS) {
    const title = `${fixture.name} › envelope › ${scenario.title}`;
    if (fixture.missing !== undefined) {
      test.skip(`${title} — skipped: ${fixture.missing}`, () => {});
      continue;
    }
    const register = fixture.serial ? test.serial : test;
    register(title, (t) => scenario.run(t, fixture.setup(t)));
  }
}
