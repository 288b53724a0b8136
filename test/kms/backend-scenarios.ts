/**
 * The backend's scenarios, one body for every token: registered by backend-emulator.test.ts and
 * backend-softhsm.test.ts with their fixture. A token that is not available registers every
 * scenario as skipped, with the reason in the title.
 */
import test, { type ExecutionContext } from "ava";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { MAC_BYTES, MAX_DATA_BYTES, WRAPPED_VERSION_KEY_BYTES, type KmsBackend, type VersionRef } from "../../src/kms/backend/backend.js";
import { KmsError, type KmsErrorCode } from "../../src/kms/errors.js";
import { pkcs11, type SecretKey } from "../../src/kms/backend/pkcs11.js";
import type { ChildReply, ChildRequest } from "./backend-child.js";
import type { TokenFixture, TokenHarness } from "./backend-fixtures.js";

const CHILD = fileURLToPath(new URL("./backend-child.js", import.meta.url));

export interface Scenario {
  title: string;
  run(t: ExecutionContext, harness: TokenHarness): void;
}

/** Asserts the KmsError code (and that it is a KmsError), returning it. */
export function throwsKms(t: ExecutionContext, fn: () => unknown, code: KmsErrorCode): KmsError {
  const error = t.throws(fn, { instanceOf: KmsError });
  t.is(error?.code, code, error?.detail);
  return error!;
}

function version(backend: KmsBackend, id: string): VersionRef {
  return { id, wrapped: backend.createVersionKey() };
}

function flip(bytes: Uint8Array, bit: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[bit >> 3]! ^= 1 << (bit & 7);
  return copy;
}

export const SCENARIOS: Scenario[] = [
  {
    title: "creates the root and MAC keys on first start and finds them by label after a restart",
    run(t, harness) {
      const first = harness.open();
      const info = first.info();
      t.true(info.rootKey.created);
      t.true(info.macKey.created);
      t.true(info.rootKey.neverExposed, "the root key was generated sensitive and never extractable");
      t.true(info.macKey.neverExposed);
      t.regex(info.rootKey.id, /^[0-9a-f]{32}$/u);
      t.not(info.rootKey.id, info.macKey.id);
      t.deepEqual(info.mechanisms, { wrap: "CKM_AES_KEY_WRAP_PAD", encrypt: "CKM_AES_GCM", mac: "CKM_SHA256_HMAC" });
      t.is(info.token.label, "hsmkit-kms");
      const v = version(first, "k:1");
      const iv = first.random(12);
      const aad = Buffer.from("header");
      const sealed = first.encrypt(v, iv, aad, Buffer.from("survives restarts"));
      const mac = first.mac(Buffer.from("checkpoint"));
      first.close();

      harness.restart();
      const second = harness.open();
      const again = second.info();
      t.false(again.rootKey.created);
      t.false(again.macKey.created);
      t.is(again.rootKey.id, info.rootKey.id);
      t.is(again.macKey.id, info.macKey.id);
      t.is(second.decrypt(v, iv, aad, sealed).toString(), "survives restarts");
      t.true(second.verifyMac(Buffer.from("checkpoint"), mac));
      t.deepEqual(second.mac(Buffer.from("checkpoint")), mac);
      // Only one root key and one MAC key exist: a third start still finds exactly one of each.
      second.close();
      t.false(harness.open().info().rootKey.created);
    },
  },
  {
    title: "a new process finds the keys without creating them and opens what the first one sealed",
    run(t, harness) {
      const backend = harness.open();
      const v = version(backend, "k:7");
      const iv = backend.random(12);
      const aad = Buffer.from("context");
      const plaintext = backend.random(100);
      const sealed = backend.encrypt(v, iv, aad, plaintext);
      const macData = Buffer.from("audit checkpoint");
      const mac = backend.mac(macData);
      const rootId = backend.info().rootKey.id;
      backend.close();
      const request: ChildRequest = {
        token: harness.handOver(), versionId: v.id, wrapped: Buffer.from(v.wrapped).toString("hex"), iv: iv.toString("hex"),
        aad: aad.toString("hex"), sealed: sealed.toString("hex"), macData: macData.toString("hex"), mac: mac.toString("hex"),
      };
      const output = execFileSync(process.execPath, [CHILD, JSON.stringify(request)], { encoding: "utf8", env: process.env });
      const reply = JSON.parse(output) as ChildReply;
      t.false(reply.rootCreated);
      t.false(reply.macCreated);
      t.is(reply.rootId, rootId);
      t.is(reply.plaintext, plaintext.toString("hex"));
      t.true(reply.macValid);
      t.is(reply.mac, mac.toString("hex"));
    },
  },
  {
    title: "version keys are made in the token and leave it only wrapped (40 bytes); unwrapped ones are sensitive and unextractable",
    run(t, harness) {
      const backend = harness.open();
      const versions = [version(backend, "a:1"), version(backend, "b:1"), version(backend, "c:1")];
      for (const v of versions) t.is(v.wrapped.length, WRAPPED_VERSION_KEY_BYTES);
      t.is(new Set(versions.map((v) => Buffer.from(v.wrapped).toString("hex"))).size, 3);
      t.deepEqual(harness.sessionKeys(), [], "the generated key was destroyed once wrapped");
      const iv = backend.random(12);
      const sealed = versions.map((v) => backend.encrypt(v, iv, Buffer.alloc(0), Buffer.from("same message")));
      t.is(new Set(sealed.map((s) => s.toString("hex"))).size, 3, "three different keys");
      const objects = harness.sessionKeys();
      t.is(objects.length, 3);
      for (const o of objects) {
        t.deepEqual(o, { token: false, sensitive: true, extractable: false, encrypt: true, decrypt: true, wrap: false, unwrap: false });
      }
      // A blob of one version does not open under another.
      throwsKms(t, () => backend.decrypt(versions[1]!, iv, Buffer.alloc(0), sealed[0]!), "KMS.2201");
      t.is(backend.decrypt(versions[0]!, iv, Buffer.alloc(0), sealed[0]!).toString(), "same message");
    },
  },
  {
    title: "encrypt/decrypt round trips; any tampering is the one opaque KMS.2201 and the sessions stay healthy",
    run(t, harness) {
      const backend = harness.open();
      const v = version(backend, "k:1");
      const other = version(backend, "k:2");
      const aad = Buffer.from("aad bytes");
      for (const size of [1, 15, 16, 17, 1024, 4096, MAX_DATA_BYTES]) {
        const iv = backend.random(12);
        const plaintext = backend.random(size);
        const sealed = backend.encrypt(v, iv, aad, plaintext);
        t.is(sealed.length, size + 16);
        t.deepEqual(backend.decrypt(v, iv, aad, sealed), plaintext, `size ${size}`);
      }
      const iv = backend.random(12);
      const sealed = backend.encrypt(v, iv, aad, Buffer.from("attack at dawn"));
      const tampered: Array<[string, () => unknown]> = [
        ["first ciphertext bit", () => backend.decrypt(v, iv, aad, flip(sealed, 0))],
        ["last tag bit", () => backend.decrypt(v, iv, aad, flip(sealed, sealed.length * 8 - 1))],
        ["IV", () => backend.decrypt(v, flip(iv, 5), aad, sealed)],
        ["AAD", () => backend.decrypt(v, iv, flip(aad, 9), sealed)],
        ["AAD dropped", () => backend.decrypt(v, iv, Buffer.alloc(0), sealed)],
        ["truncated", () => backend.decrypt(v, iv, aad, sealed.subarray(0, sealed.length - 1))],
        ["tag only", () => backend.decrypt(v, iv, aad, sealed.subarray(sealed.length - 16))],
        ["another version", () => backend.decrypt(other, iv, aad, sealed)],
      ];
      for (const [what, attempt] of tampered) {
        const error = throwsKms(t, attempt, "KMS.2201");
        t.is(error.status, 400, what);
        t.is(error.message, "Invalid cipher_text.", what);
      }
      t.is(backend.decrypt(v, iv, aad, sealed).toString(), "attack at dawn");
      t.is(backend.info().recoveries, 0, "a rejected tag never needed a reconnect");
    },
  },
  {
    title: "encrypt writes into the caller's buffer when given one (the same bytes, in place); every result is the caller's own",
    run(t, harness) {
      const backend = harness.open();
      const v = version(backend, "k:1");
      const aad = Buffer.from("aad");
      const plaintext = backend.random(1024);
      const iv = backend.random(12);
      const fresh = backend.encrypt(v, iv, aad, plaintext);
      // The envelope's use: the sealed bytes go after a header, inside a larger buffer.
      const blob = Buffer.alloc(7 + fresh.length + 5, 0xa5);
      const inPlace = backend.encrypt(v, iv, aad, plaintext, blob.subarray(7));
      t.is(inPlace.buffer, blob.buffer);
      t.is(inPlace.byteOffset, blob.byteOffset + 7);
      t.deepEqual(inPlace, fresh);
      t.deepEqual(blob.subarray(0, 7), Buffer.alloc(7, 0xa5), "nothing written before out");
      t.deepEqual(blob.subarray(7 + fresh.length), Buffer.alloc(5, 0xa5), "nothing written past the sealed bytes");
      t.deepEqual(backend.decrypt(v, iv, aad, inPlace), plaintext);
      throwsKms(t, () => backend.encrypt(v, iv, aad, plaintext, Buffer.alloc(fresh.length - 1)), "KMS.0308");
      throwsKms(t, () => backend.encrypt(v, iv, aad, plaintext, "out" as unknown as Buffer), "KMS.0308");
      // No result shares bytes with another: overwriting one leaves the next call's untouched.
      const results = [
        ["encrypt", () => backend.encrypt(v, iv, aad, plaintext)],
        ["decrypt", () => backend.decrypt(v, iv, aad, fresh)],
        ["random", () => backend.random(32)],
      ] as const;
      for (const [what, call] of results) {
        const first = call();
        const kept = Buffer.from(first);
        const second = call();
        second.fill(0x5a);
        t.deepEqual(first, kept, what);
        first.fill(0xc3);
        t.false(second.some((byte) => byte !== 0x5a), what);
      }
      t.deepEqual(backend.decrypt(v, iv, aad, fresh), plaintext);
    },
  },
  {
    title: "the handle cache stays within its bound and evicted versions are unwrapped again",
    run(t, harness) {
      const backend = harness.open({ cacheSize: 2 });
      const versions = Array.from({ length: 6 }, (_, i) => version(backend, `key-${i}:1`));
      const iv = backend.random(12);
      const sealed = versions.map((v, i) => backend.encrypt(v, iv, Buffer.alloc(0), Buffer.from(`message ${i}`)));
      t.true(harness.sessionKeys().length <= 2);
      for (const order of [[0, 1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 0], [0, 3, 0, 3, 5, 1, 1]]) {
        for (const i of order) {
          t.is(backend.decrypt(versions[i]!, iv, Buffer.alloc(0), sealed[i]!).toString(), `message ${i}`);
          t.true(harness.sessionKeys().length <= 2);
        }
      }
      const stats = backend.info().cache;
      t.is(stats.capacity, 2);
      t.is(stats.size, 2);
      t.true(stats.evictions >= 10, `evictions ${stats.evictions}`);
      t.is(stats.unwraps, stats.misses);
      t.true(stats.hits >= 2);
      // destroyVersion destroys the cached object; an unknown id is a no-op.
      backend.destroyVersion(versions[1]!.id);
      t.is(harness.sessionKeys().length, 1);
      backend.destroyVersion(versions[1]!.id);
      backend.destroyVersion("never-seen");
      t.is(backend.info().cache.size, 1);
    },
  },
  {
    title: "the same id with a different wrapping is unwrapped afresh, never served from the cache",
    run(t, harness) {
      const backend = harness.open();
      const a = version(backend, "shared:1");
      const b = { id: "shared:1", wrapped: backend.createVersionKey() };
      const iv = backend.random(12);
      const sealedA = backend.encrypt(a, iv, Buffer.alloc(0), Buffer.from("under a"));
      throwsKms(t, () => backend.decrypt(b, iv, Buffer.alloc(0), sealedA), "KMS.2201");
      t.is(backend.decrypt(a, iv, Buffer.alloc(0), sealedA).toString(), "under a");
      t.is(harness.sessionKeys().length, 1, "the replaced object was destroyed");
      // The cache compares the wrapping's bytes, not the object: equal bytes elsewhere are a hit,
      // and the same array changed in place is a different wrapping.
      const unwraps = backend.info().cache.unwraps;
      const same = { id: "shared:1", wrapped: Buffer.from(a.wrapped) };
      t.is(backend.decrypt(same, iv, Buffer.alloc(0), sealedA).toString(), "under a");
      t.is(backend.info().cache.unwraps, unwraps);
      same.wrapped.set(b.wrapped);
      throwsKms(t, () => backend.decrypt(same, iv, Buffer.alloc(0), sealedA), "KMS.2201");
      t.is(backend.info().cache.unwraps, unwraps + 1);
    },
  },
  {
    title: "a corrupted or mis-sized wrapped key is a server fault (KMS.0101), not the client's",
    run(t, harness) {
      const backend = harness.open();
      const v = version(backend, "k:1");
      const iv = backend.random(12);
      for (const bit of [0, 100, 319]) {
        const error = throwsKms(t, () => backend.encrypt({ id: `k:bad${bit}`, wrapped: flip(v.wrapped, bit) }, iv, Buffer.alloc(0), Buffer.from("x")), "KMS.0101");
        t.regex(error.detail ?? "", /unwrapping version k:bad\d+: CKR_\w+/u);
        t.is(error.status, 500);
      }
      throwsKms(t, () => backend.encrypt({ id: "k:short", wrapped: v.wrapped.subarray(0, 32) }, iv, Buffer.alloc(0), Buffer.from("x")), "KMS.0101");
      t.is(backend.encrypt(v, iv, Buffer.alloc(0), Buffer.from("x")).length, 17);
      t.deepEqual(harness.sessionKeys().length, 1);
    },
  },
  {
    title: "random bytes come from the token, in the documented range",
    run(t, harness) {
      const backend = harness.open();
      for (const length of [1, 12, 1024, 65536]) t.is(backend.random(length).length, length);
      t.notDeepEqual(backend.random(32), backend.random(32));
      for (const bad of [0, -1, 1.5, 65537, Number.NaN]) throwsKms(t, () => backend.random(bad), "KMS.0308");
    },
  },
  {
    title: "HMAC-SHA256 with the token's MAC key: deterministic, verified in the token, false for any change",
    run(t, harness) {
      const backend = harness.open();
      const data = Buffer.from("chain head after record 1000");
      const mac = backend.mac(data);
      t.is(mac.length, MAC_BYTES);
      t.deepEqual(backend.mac(data), mac);
      t.notDeepEqual(backend.mac(Buffer.from("chain head after record 1001")), mac);
      const empty = backend.mac(Buffer.alloc(0));
      t.is(empty.length, MAC_BYTES);
      t.true(backend.verifyMac(Buffer.alloc(0), empty));
      t.false(backend.verifyMac(Buffer.alloc(0), mac));
      t.false(backend.verifyMac(data, empty));
      t.true(backend.verifyMac(data, mac));
      t.false(backend.verifyMac(flip(data, 3), mac));
      t.false(backend.verifyMac(data, flip(mac, 255)));
      t.false(backend.verifyMac(data, mac.subarray(0, 31)));
      t.false(backend.verifyMac(data, Buffer.concat([mac, Buffer.alloc(1)])));
      t.false(backend.verifyMac(data, Buffer.alloc(0)));
      t.true(backend.verifyMac(data, mac), "still fine after the failures");
    },
  },
  {
    title: "refuses a wrong PIN, an unknown token, missing keys with createKeys false, and a planted extractable root key",
    run(t, harness) {
      t.regex(throwsKms(t, () => harness.open({ pin: "000000" }), "KMS.0101").detail ?? "", /CKR_PIN_INCORRECT/u);
      t.regex(throwsKms(t, () => harness.open({ tokenLabel: "no-such-token" }), "KMS.0101").detail ?? "", /no token labelled "no-such-token" is present \(tokens present: "[^"]+"/u);
      t.regex(throwsKms(t, () => harness.open({ createKeys: false }), "KMS.0101").detail ?? "", /no root key labelled/u);
      harness.withSession((session) => {
        session.generateKey({ name: pkcs11.CKM_AES_KEY_GEN, params: null }, {
          keyType: pkcs11.CKK_AES, valueLen: 32, token: true, private: true, sensitive: false, extractable: true,
          wrap: true, unwrap: true, label: "planted-root",
        });
        for (const label of ["twin", "twin"]) {
          session.generateKey({ name: pkcs11.CKM_AES_KEY_GEN, params: null }, {
            keyType: pkcs11.CKK_AES, valueLen: 32, token: true, private: true, sensitive: true, extractable: false, wrap: true, unwrap: true, label,
          });
        }
      });
      const planted = throwsKms(t, () => harness.open({ rootKeyLabel: "planted-root" }), "KMS.0101");
      t.regex(planted.detail ?? "", /not sensitive, extractable/u);
      t.regex(throwsKms(t, () => harness.open({ rootKeyLabel: "twin" }), "KMS.0101").detail ?? "", /2 secret keys .* refusing to choose/u);
      // None of the failures leaked the module or a session: a good open still works and closes cleanly.
      const backend = harness.open();
      t.is(backend.random(4).length, 4);
    },
  },
  {
    title: "refuses a root or MAC key that is public (CKA_PRIVATE false) though sensitive and unextractable: it works without the PIN",
    run(t, harness) {
      const generate = { name: pkcs11.CKM_AES_KEY_GEN, params: null };
      const usage = { encrypt: false, decrypt: false, sign: false, verify: false, derive: false, wrap: false, unwrap: false };
      const fit = { token: true, private: false, sensitive: true, extractable: false, modifiable: false };
      const rootTemplate = { ...usage, ...fit, keyType: pkcs11.CKK_AES, valueLen: 32, wrap: true, unwrap: true };
      let wrapped: Buffer | undefined;
      harness.withSession((session) => {
        const root = session.generateKey(generate, { ...rootTemplate, label: "public-root" });
        session.generateKey({ name: pkcs11.CKM_GENERIC_SECRET_KEY_GEN, params: null }, {
          ...usage, ...fit, keyType: pkcs11.CKK_GENERIC_SECRET, valueLen: 32, sign: true, verify: true, label: "public-mac",
        });
        const version = session.generateKey(generate, { ...usage, keyType: pkcs11.CKK_AES, valueLen: 32, token: false, sensitive: true, extractable: true });
        wrapped = session.wrapKey({ name: pkcs11.CKM_AES_KEY_WRAP_PAD, params: null }, root, version);
      });
      // What such a root key gives away: a session nobody logged in to unwraps a version into a key it can read.
      const exposed = harness.withPublicSession((session) => {
        t.throws(() => session.generateKey(generate, { keyType: pkcs11.CKK_AES, valueLen: 32, token: false, private: true }), { message: /CKR_USER_NOT_LOGGED_IN/u });
        const root = session.find({ class: pkcs11.CKO_SECRET_KEY, token: true, label: "public-root" }).items(0).toType<SecretKey>();
        const key = session.unwrapKey({ name: pkcs11.CKM_AES_KEY_WRAP_PAD, params: null }, root, wrapped!, {
          class: pkcs11.CKO_SECRET_KEY, keyType: pkcs11.CKK_AES, token: false, private: false, sensitive: false, extractable: true,
        });
        return (key.getAttribute({ value: null }) as { value: Buffer }).value;
      });
      t.is(exposed.length, 32);
      for (const [labels, role] of [[{ rootKeyLabel: "public-root" }, "root key"], [{ macKeyLabel: "public-mac" }, "MAC key"]] as const) {
        const error = throwsKms(t, () => harness.open(labels), "KMS.0101");
        t.regex(error.detail ?? "", new RegExp(`cannot serve as the ${role}: not private$`, "u"));
      }
      t.is(harness.open().random(4).length, 4);
    },
  },
  {
    title: "arguments outside the contract are KMS.0308; close is idempotent and later calls fail",
    run(t, harness) {
      const backend = harness.open();
      const v = version(backend, "k:1");
      const iv = backend.random(12);
      throwsKms(t, () => backend.encrypt(v, Buffer.alloc(16), Buffer.alloc(0), Buffer.from("x")), "KMS.0308");
      throwsKms(t, () => backend.encrypt(v, iv, Buffer.alloc(0), Buffer.alloc(0)), "KMS.0308");
      throwsKms(t, () => backend.encrypt(v, iv, Buffer.alloc(0), Buffer.alloc(MAX_DATA_BYTES + 1)), "KMS.0308");
      throwsKms(t, () => backend.encrypt({ id: "", wrapped: v.wrapped }, iv, Buffer.alloc(0), Buffer.from("x")), "KMS.0308");
      throwsKms(t, () => backend.decrypt(v, iv, Buffer.alloc(0), Buffer.alloc(16)), "KMS.2201");
      throwsKms(t, () => backend.mac("text" as unknown as Buffer), "KMS.0308");
      t.is(backend.unserviceable(), undefined);
      backend.close();
      backend.close();
      throwsKms(t, () => backend.random(4), "KMS.0101");
      throwsKms(t, () => backend.info(), "KMS.0101");
      t.is(backend.unserviceable(), "the backend is closed");
    },
  },
  {
    title: "two backends share the module (initialized once); closing one leaves the other working",
    run(t, harness) {
      const a = harness.open();
      const b = harness.open();
      t.false(b.info().rootKey.created, "the second found the keys the first made");
      const v = version(a, "k:1");
      const iv = a.random(12);
      const sealed = a.encrypt(v, iv, Buffer.alloc(0), Buffer.from("shared token"));
      t.is(b.decrypt(v, iv, Buffer.alloc(0), sealed).toString(), "shared token");
      t.is(harness.sessionKeys().length, 2, "each backend unwrapped its own object");
      a.close();
      t.is(harness.sessionKeys().length, 1, "closing a backend destroyed its objects only");
      t.is(b.decrypt(v, iv, Buffer.alloc(0), sealed).toString(), "shared token");
      t.is(b.info().recoveries, 0);
    },
  },
];

/** Registers every scenario for one token (skipped, with the reason, when the token is missing). */
export function registerBackendScenarios(fixture: TokenFixture, extra: Scenario[] = []): void {
  for (const scenario of [...SCENARIOS, ...extra]) {
    const title = `${fixture.name} › ${scenario.title}`;
    if (fixture.missing !== undefined) {
      test.skip(`${title} — skipped: ${fixture.missing}`, () => {});
      continue;
    }
    const register = fixture.serial ? test.serial : test;
    register(title, (t) => scenario.run(t, fixture.setup(t)));
  }
}
