/**
 * The key lifecycle through the Kms, one body for both tokens (kms-lifecycle-emulator.test.ts,
 * kms-lifecycle-softhsm.test.ts): create/describe/list/update, the state × operation matrix with
 * Huawei's codes, scheduled deletion and its sweeper, default keys, quotas.
 */
import type { TagCondition } from "../../src/kms/api.js";
import type { KeyDetails } from "../../src/kms/details.js";
import { KmsError } from "../../src/kms/errors.js";
import { dekDigest } from "../../src/kms/envelope/datakey.js";
import type { Kms } from "../../src/kms/kms.js";
import type { KeyState } from "../../src/kms/types.js";
import { P, Q, rejects, type KmsHarness, type KmsScenario } from "./kms-fixtures.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/u;

/** The outcome of one call: "ok" or the KMS code. */
async function outcome(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "ok";
  } catch (error) {
    if (error instanceof KmsError) return error.code;
    throw error;
  }
}

type Kind = "enabled" | "disabled" | "pending" | "default";

interface Subject {
  keyId: string;
  dataBlob: Buffer;
  keyBlob: Buffer;
}

/** A key of the kind, with a data blob and a data-key blob sealed while it was enabled. */
async function subject(h: KmsHarness, kind: Kind, n: number): Promise<Subject> {
  const ctx = h.ctx("mallory");
  const keyId = kind === "default"
    ? (await h.kms.encryptData(ctx, { keyId: "obs/default", plainText: "first use" })).keyId
    : (await h.kms.createKey(ctx, { keyAlias: `matrix-${kind}-${n}` })).keyId;
  const dataBlob = (await h.kms.encryptData(ctx, { keyId, plainText: "matrix" })).cipherText;
  const keyBlob = (await h.kms.createDataKeyWithoutPlaintext(ctx, { keyId })).cipherText;
  if (kind === "disabled") await h.kms.disableKey(ctx, { keyId });
  if (kind === "pending") await h.kms.scheduleKeyDeletion(ctx, { keyId, pendingDays: 7 });
  return { keyId, dataBlob, keyBlob };
}

const DEK = Buffer.alloc(32, 7);

/** Every operation on a key, as (name, call). */
const OPERATIONS: Array<[string, (kms: Kms, h: KmsHarness, s: Subject, helper: string, helperBlob: Buffer) => Promise<unknown>]> = [
  ["describe-key", (kms, h, s) => kms.describeKey(h.ctx("mallory"), { keyId: s.keyId })],
  ["enable-key", (kms, h, s) => kms.enableKey(h.ctx("mallory"), { keyId: s.keyId })],
  ["disable-key", (kms, h, s) => kms.disableKey(h.ctx("mallory"), { keyId: s.keyId })],
  ["schedule-key-deletion", (kms, h, s) => kms.scheduleKeyDeletion(h.ctx("mallory"), { keyId: s.keyId, pendingDays: "7" })],
  ["cancel-key-deletion", (kms, h, s) => kms.cancelKeyDeletion(h.ctx("mallory"), { keyId: s.keyId })],
  ["update-key-alias", (kms, h, s) => kms.updateKeyAlias(h.ctx("mallory"), { keyId: s.keyId, keyAlias: `renamed-${s.keyId}` })],
  ["update-key-description", (kms, h, s) => kms.updateKeyDescription(h.ctx("mallory"), { keyId: s.keyId, keyDescription: "new words" })],
  ["encrypt-data", (kms, h, s) => kms.encryptData(h.ctx("mallory"), { keyId: s.keyId, plainText: "x" })],
  ["decrypt-data", (kms, h, s) => kms.decryptData(h.ctx("mallory"), { cipherText: s.dataBlob })],
  ["create-datakey", (kms, h, s) => kms.createDataKey(h.ctx("mallory"), { keyId: s.keyId })],
  ["create-datakey-without-plaintext", (kms, h, s) => kms.createDataKeyWithoutPlaintext(h.ctx("mallory"), { keyId: s.keyId, datakeyLength: "512" })],
  ["encrypt-datakey", (kms, h, s) => kms.encryptDataKey(h.ctx("mallory"), { keyId: s.keyId, plainText: Buffer.concat([DEK, dekDigest(DEK)]), datakeyPlainLength: 32 })],
  ["decrypt-datakey", (kms, h, s) => kms.decryptDataKey(h.ctx("mallory"), { keyId: s.keyId, cipherText: s.keyBlob, datakeyCipherLength: 32 })],
  ["re-encrypt (source)", (kms, h, s, helper) => kms.reEncrypt(h.ctx("mallory"), { cipherText: s.dataBlob, destinationKeyId: helper })],
  ["re-encrypt (destination)", (kms, h, s, _helper, helperBlob) => kms.reEncrypt(h.ctx("mallory"), { cipherText: helperBlob, destinationKeyId: s.keyId })],
  ["enable-key-rotation", (kms, h, s) => kms.enableKeyRotation(h.ctx("mallory"), { keyId: s.keyId })],
  ["disable-key-rotation", (kms, h, s) => kms.disableKeyRotation(h.ctx("mallory"), { keyId: s.keyId })],
  ["update-key-rotation-interval", (kms, h, s) => kms.updateKeyRotationInterval(h.ctx("mallory"), { keyId: s.keyId, rotationInterval: 90 })],
  ["get-key-rotation-status", (kms, h, s) => kms.getKeyRotationStatus(h.ctx("mallory"), { keyId: s.keyId })],
  ["rotate-on-demand", (kms, h, s) => kms.rotateKeyOnDemand(h.ctx("mallory"), { keyId: s.keyId })],
  ["create-grant", (kms, h, s) => kms.createGrant(h.ctx("mallory"), { keyId: s.keyId, granteePrincipal: "frank", operations: ["describe-key"] })],
  ["list-grants", (kms, h, s) => kms.listGrants(h.ctx("mallory"), { keyId: s.keyId })],
  ["create-key-tag", (kms, h, s) => kms.createKeyTag(h.ctx("mallory"), { keyId: s.keyId, tag: { key: "env", value: "test" } })],
  ["batch-key-tags (create)", (kms, h, s) => kms.batchKeyTags(h.ctx("mallory"), { keyId: s.keyId, action: "create", tags: [{ key: "env", value: "test" }] })],
  ["delete-key-tag", (kms, h, s) => kms.deleteKeyTag(h.ctx("mallory"), { keyId: s.keyId, key: "env" })],
  ["list-key-tags", (kms, h, s) => kms.listKeyTags(h.ctx("mallory"), { keyId: s.keyId })],
];

/**
 * Huawei's answer for each operation in each kind of key (lifecycle.ts has the same table).
 * States 1 and 5 cannot be reached with origin "kms".
 */
const EXPECTED: Record<string, Record<Kind, string>> = {
  "describe-key": { enabled: "ok", disabled: "ok", pending: "ok", default: "ok" },
  "enable-key": { enabled: "KMS.1201", disabled: "ok", pending: "KMS.0210", default: "KMS.1201" },
  "disable-key": { enabled: "ok", disabled: "KMS.1301", pending: "KMS.0210", default: "KMS.0211" },
  "schedule-key-deletion": { enabled: "ok", disabled: "ok", pending: "KMS.1402", default: "KMS.0211" },
  "cancel-key-deletion": { enabled: "KMS.1501", disabled: "KMS.1501", pending: "ok", default: "KMS.1501" },
  "update-key-alias": { enabled: "ok", disabled: "ok", pending: "KMS.0210", default: "KMS.0211" },
  // OTC umn "Viewing a Key": "A default key … does not allow name and description changes".
  "update-key-description": { enabled: "ok", disabled: "ok", pending: "KMS.0210", default: "KMS.0211" },
  "encrypt-data": { enabled: "ok", disabled: "KMS.0209", pending: "KMS.0210", default: "ok" },
  "decrypt-data": { enabled: "ok", disabled: "KMS.0209", pending: "KMS.0210", default: "ok" },
  "create-datakey": { enabled: "ok", disabled: "KMS.0209", pending: "KMS.0210", default: "ok" },
  "create-datakey-without-plaintext": { enabled: "ok", disabled: "KMS.0209", pending: "KMS.0210", default: "ok" },
  "encrypt-datakey": { enabled: "ok", disabled: "KMS.0209", pending: "KMS.0210", default: "ok" },
  "decrypt-datakey": { enabled: "ok", disabled: "KMS.0209", pending: "KMS.0210", default: "ok" },
  "re-encrypt (source)": { enabled: "ok", disabled: "KMS.0209", pending: "KMS.0210", default: "ok" },
  "re-encrypt (destination)": { enabled: "ok", disabled: "KMS.0209", pending: "KMS.0210", default: "ok" },
  "enable-key-rotation": { enabled: "ok", disabled: "KMS.0209", pending: "KMS.0210", default: "KMS.0211" },
  "disable-key-rotation": { enabled: "ok", disabled: "KMS.0209", pending: "KMS.0210", default: "KMS.0211" },
  "update-key-rotation-interval": { enabled: "KMS.0313", disabled: "KMS.0209", pending: "KMS.0210", default: "KMS.0211" },
  "get-key-rotation-status": { enabled: "ok", disabled: "ok", pending: "ok", default: "ok" },
  "rotate-on-demand": { enabled: "ok", disabled: "KMS.0209", pending: "KMS.0210", default: "KMS.0211" },
  "create-grant": { enabled: "ok", disabled: "ok", pending: "KMS.0210", default: "KMS.0211" },
  "list-grants": { enabled: "ok", disabled: "ok", pending: "ok", default: "ok" },
  // OTC umn "Adding a Tag": "Tags cannot be added to default keys."
  "create-key-tag": { enabled: "ok", disabled: "ok", pending: "KMS.0210", default: "KMS.0211" },
  "batch-key-tags (create)": { enabled: "ok", disabled: "ok", pending: "KMS.0210", default: "KMS.0211" },
  "delete-key-tag": { enabled: "ok", disabled: "ok", pending: "KMS.0210", default: "ok" },
  "list-key-tags": { enabled: "ok", disabled: "ok", pending: "ok", default: "ok" },
};

const STATE_OF: Record<Kind, KeyState> = { enabled: 2, disabled: 3, pending: 4, default: 2 };

async function describe(h: KmsHarness, keyId: string): Promise<KeyDetails> {
  return h.kms.describeKey(h.ctx("alice"), { keyId });
}

export const LIFECYCLE_SCENARIOS: KmsScenario[] = [
  {
    title: "create-key, describe-key and list-keys give Huawei's fields; aliases are unique per project",
    async run(t, h) {
      const alice = h.ctx("alice");
      const created = await h.kms.createKey(alice, { keyAlias: "orders/main:v1_a-b", keyDescription: "the orders key" });
      t.regex(created.keyId, UUID);
      t.like(created, {
        domainId: "domain1", keyAlias: "orders/main:v1_a-b", keyDescription: "the orders key", keySpec: "AES_256", keyUsage: "ENCRYPT_DECRYPT",
        origin: "kms", keyState: 2, defaultKeyFlag: false, keyRotationEnabled: false, scheduledDeletionDate: null, realm: "hsmkit",
        creationDate: h.clock.now,
      });
      t.deepEqual(await describe(h, created.keyId), created);
      t.deepEqual(await h.kms.describeKey(alice, { keyId: "orders/main:v1_a-b" }), created, "by alias");
      // OTC also takes "alias/<alias>" where a key id goes (kms-apis.md §1.2); an alias that itself
      // begins with "alias/" is found first; "alias/" alone names nothing.
      t.deepEqual(await h.kms.describeKey(alice, { keyId: "alias/orders/main:v1_a-b" }), created, "by alias/<alias>");
      const sealed = await h.kms.encryptData(h.ctx("carol"), { keyId: "alias/orders/main:v1_a-b", plainText: "by reference" });
      t.is(sealed.keyId, created.keyId);
      t.is((await h.kms.decryptData(h.ctx("carol"), { cipherText: sealed.cipherText })).plainText.toString(), "by reference");
      const literal = await h.kms.createKey(alice, { keyAlias: "alias/orders/main:v1_a-b" });
      t.is((await h.kms.describeKey(alice, { keyId: "alias/orders/main:v1_a-b" })).keyId, literal.keyId, "the exact alias first");
      t.is((await h.kms.describeKey(alice, { keyId: "alias/alias/orders/main:v1_a-b" })).keyId, literal.keyId);
      await rejects(t, h.kms.describeKey(alice, { keyId: "alias/" }), "KMS.0207");
      await rejects(t, h.kms.describeKey(alice, { keyId: "alias/no-such-key" }), "KMS.0207");
      t.deepEqual(await h.kms.describeKey(alice, { keyId: created.keyId.toUpperCase() }), created, "key ids are case-insensitive");
      await rejects(t, h.kms.createKey(alice, { keyAlias: "orders/main:v1_a-b" }), "KMS.1104");
      // Another project may use the same alias.
      const inQ = await h.kms.createKey(h.ctx("bob", Q), { keyAlias: "orders/main:v1_a-b" });
      t.is(inQ.domainId, "domain2");
      t.not(inQ.keyId, created.keyId);

      for (const alias of ["", "a b", "x".repeat(256), "é", "orders/default", "obs/default", "x/default"]) {
        await rejects(t, h.kms.createKey(alice, { keyAlias: alias }), "KMS.1101", JSON.stringify(alias));
      }
      await h.kms.createKey(alice, { keyAlias: "x".repeat(255), keyDescription: "d".repeat(255) });
      await rejects(t, h.kms.createKey(alice, { keyAlias: "long-description", keyDescription: "d".repeat(256) }), "KMS.1103");
      // 0-255 characters (Huawei), counted as characters like the HTTP schema counts them, not as UTF-16 units.
      const wide = await h.kms.createKey(alice, { keyAlias: "wide-description", keyDescription: "\u{1F511}".repeat(255) });
      t.is((await describe(h, wide.keyId)).keyDescription, "\u{1F511}".repeat(255));
      await rejects(t, h.kms.createKey(alice, { keyAlias: "wider-description", keyDescription: "\u{1F511}".repeat(256) }), "KMS.1103");
      // A lone surrogate is no character; the store (UTF-8) would keep another text than the one accepted.
      await rejects(t, h.kms.createKey(alice, { keyAlias: "surrogate", keyDescription: "half \ud800 a pair" }), "KMS.1103");
      await rejects(t, h.kms.updateKeyDescription(alice, { keyId: wide.keyId, keyDescription: "\udc00" }), "KMS.1103");
      await rejects(t, h.kms.createKey(alice, { keyAlias: "rsa", keySpec: "RSA_2048" }), "KMS.0308");
      await rejects(t, h.kms.createKey(alice, { keyAlias: "sign", keyUsage: "SIGN_VERIFY" }), "KMS.0308");
      await rejects(t, h.kms.createKey(alice, { keyAlias: "byok", origin: "external" }), "KMS.0308");
      await rejects(t, h.kms.describeKey(alice, { keyId: "not a key id!" }), "KMS.0205");
      await rejects(t, h.kms.describeKey(alice, { keyId: "00000000-0000-4000-8000-000000000000" }), "KMS.0207");
      await rejects(t, h.kms.describeKey(alice, { keyId: "no-such-alias" }), "KMS.0207");

      // Updates.
      t.deepEqual(await h.kms.updateKeyAlias(alice, { keyId: created.keyId, keyAlias: "orders-2" }), { keyId: created.keyId, keyAlias: "orders-2" });
      await rejects(t, h.kms.describeKey(alice, { keyId: "orders/main:v1_a-b" }), "KMS.0207", "the old alias is free");
      t.is((await h.kms.describeKey(alice, { keyId: "orders-2" })).keyId, created.keyId);
      await rejects(t, h.kms.updateKeyAlias(alice, { keyId: created.keyId, keyAlias: "x".repeat(255) }), "KMS.1104");
      await rejects(t, h.kms.updateKeyAlias(alice, { keyId: created.keyId, keyAlias: "orders/default" }), "KMS.1101");
      t.deepEqual(await h.kms.updateKeyDescription(alice, { keyId: created.keyId, keyDescription: "kept" }), { keyId: created.keyId, keyDescription: "kept" });
      // key_description is required (Huawei UpdateKeyDescriptionRequestBody): a missing one is refused, not read as "".
      await rejects(t, h.kms.updateKeyDescription(alice, { keyId: created.keyId } as never), "KMS.0204");
      await rejects(t, h.kms.updateKeyDescription(alice, { keyId: created.keyId, keyDescription: null } as never), "KMS.1103");
      t.is((await h.kms.describeKey(alice, { keyId: created.keyId })).keyDescription, "kept");
      t.deepEqual(await h.kms.updateKeyDescription(alice, { keyId: created.keyId, keyDescription: "" }), { keyId: created.keyId, keyDescription: "" });
      await rejects(t, h.kms.updateKeyDescription(alice, { keyId: created.keyId, keyDescription: "d".repeat(256) }), "KMS.1103");
    },
  },
  {
    title: "list-keys: marker/limit paging in creation order, state filter, total; bad limits and markers",
    async run(t, h) {
      const alice = h.ctx("alice");
      const ids: string[] = [];
      for (let i = 0; i < 7; i++) ids.push((await h.kms.createKey(alice, { keyAlias: `page-${i}` })).keyId);
      await h.kms.disableKey(alice, { keyId: ids[2]! });
      await h.kms.disableKey(alice, { keyId: ids[5]! });
      const seen: string[] = [];
      let marker: string | undefined;
      let pages = 0;
      do {
        const page = await h.kms.listKeys(alice, { limit: "3", marker });
        t.is(page.total, 7);
        t.deepEqual(page.keys, page.keyDetails.map((key) => key.keyId));
        t.is(page.truncated, page.nextMarker !== null);
        seen.push(...page.keys);
        marker = page.nextMarker ?? undefined;
        pages++;
      } while (marker !== undefined);
      t.deepEqual(seen, ids);
      t.is(pages, 3);
      const disabled = await h.kms.listKeys(alice, { keyState: "3" });
      t.deepEqual(disabled.keys, [ids[2], ids[5]]);
      t.is(disabled.total, 2);
      t.is((await h.kms.listKeys(alice, { keyState: 4 })).total, 0);
      t.is((await h.kms.listKeys(h.ctx("dave"))).total, 7, "auditors list");
      t.is((await h.kms.listKeys(h.ctx("carol"))).total, 7, "cryptographic users list");
      await rejects(t, h.kms.listKeys(alice, { limit: 0 }), "KMS.1601");
      await rejects(t, h.kms.listKeys(alice, { limit: 2001 }), "KMS.1601");
      await rejects(t, h.kms.listKeys(alice, { limit: "ten" }), "KMS.1601");
      await rejects(t, h.kms.listKeys(alice, { marker: "x" }), "KMS.1602");
      await rejects(t, h.kms.listKeys(alice, { keyState: 9 }), "KMS.0308");
      // key_spec (Huawei ListKeys): AES_256 by default, ALL for every key; every key here is AES_256.
      for (const keySpec of [undefined, "", "AES_256", "ALL"]) t.is((await h.kms.listKeys(alice, { keySpec })).total, 7, `key_spec ${String(keySpec)}`);
      for (const keySpec of ["RSA_2048", "SM4", "HMAC_256"]) {
        const none = await h.kms.listKeys(alice, { keySpec });
        t.deepEqual([none.keys, none.total, none.truncated], [[], 0, false], keySpec);
      }
      await rejects(t, h.kms.listKeys(alice, { keySpec: "FOO" }), "KMS.0308");
      await rejects(t, h.kms.listKeys(alice, { keySpec: "aes_256" }), "KMS.0308");
    },
  },
  {
    // Huawei ListKeys: limit is 1-2000 and defaults to 2000, twice the store's largest page, so a
    // page past 1000 keys is read in parts: this needs more than 1000 keys in the project.
    title: "list-keys: limit 1-2000 and a default of 2000 (Huawei ListKeys), pages of more than 1000 keys whole and in order",
    options: { limits: { customKeysPerProject: 1100 } },
    async run(t, h) {
      const alice = h.ctx("alice");
      const ids: string[] = [];
      for (let i = 0; i < 1001; i++) ids.push((await h.kms.createKey(alice, { keyAlias: `many-${i}` })).keyId);
      ids.push((await h.kms.encryptData(h.ctx("carol"), { keyId: "obs/default", plainText: "first use" })).keyId);
      const all = await h.kms.listKeys(alice);
      t.deepEqual(all.keys, ids, "no limit: every key of 1002, in creation order");
      t.is(all.truncated, false);
      t.is(all.nextMarker, null);
      t.is(all.total, 1002);
      t.deepEqual((await h.kms.listKeys(alice, { limit: "2000" })).keys, ids);
      const first = await h.kms.listKeys(alice, { limit: "1001" });
      t.deepEqual(first.keys, ids.slice(0, 1001));
      t.deepEqual(first.keyDetails.map((key) => key.keyId), first.keys);
      t.is(first.truncated, true);
      t.is(first.total, 1002);
      const rest = await h.kms.listKeys(alice, { limit: "1001", marker: first.nextMarker! });
      t.deepEqual(rest.keys, ids.slice(1001));
      t.is(rest.truncated, false);
      const exact = await h.kms.listKeys(alice, { limit: 1002 });
      t.deepEqual(exact.keys, ids);
      t.is(exact.truncated, false, "a page that ends with the last key is not truncated");
      t.is(exact.nextMarker, null);
      const disabled = await h.kms.listKeys(alice, { limit: 2000, keyState: 3 });
      t.deepEqual(disabled.keys, []);
      await rejects(t, h.kms.listKeys(alice, { limit: "2001" }), "KMS.1601");
    },
  },
  {
    title: "state × operation: every operation in every state gives Huawei's result or error code, and a refused one changes nothing",
    options: { limits: { customKeysPerProject: 1000 } },
    async run(t, h) {
      const ctx = h.ctx("mallory");
      const helper = (await h.kms.createKey(ctx, { keyAlias: "matrix-helper" })).keyId;
      const helperBlob = (await h.kms.encryptData(ctx, { keyId: helper, plainText: "helper" })).cipherText;
      const table: string[] = [];
      const kinds: Kind[] = ["enabled", "disabled", "pending", "default"];
      let n = 0;
      for (const kind of kinds) {
        let shared: Subject | undefined;
        for (const [name, call] of OPERATIONS) {
          // A fresh key per operation (operations change state), except the one default key per service.
          const s = kind === "default" ? (shared ??= await subject(h, kind, n++)) : await subject(h, kind, n++);
          const before = await h.kms.describeKey(ctx, { keyId: s.keyId });
          const got = await outcome(call(h.kms, h, s, helper, helperBlob));
          const want = EXPECTED[name]![kind];
          table.push(`${kind.padEnd(8)} ${name.padEnd(34)} ${got}`);
          t.is(got, want, `${name} on a ${kind} key`);
          const after = await h.kms.describeKey(ctx, { keyId: s.keyId });
          if (got !== "ok") t.deepEqual(after, before, `a refused ${name} leaves the ${kind} key as it was`);
          else t.is(before.keyState, STATE_OF[kind]);
        }
      }
      t.log(`${table.length} state × operation cases`);
    },
  },
  {
    title: "schedule-key-deletion: 7..1096 days, cancel returns to disabled; due keys are deleted by the sweeper and their ciphertexts never decrypt again, also after a restart",
    async run(t, h) {
      const alice = h.ctx("alice");
      const carol = h.ctx("carol");
      const key = await h.kms.createKey(alice, { keyAlias: "doomed" });
      const survivor = await h.kms.createKey(alice, { keyAlias: "survivor" });
      const blob = (await h.kms.encryptData(carol, { keyId: key.keyId, plainText: "gone soon" })).cipherText;
      const keyBlob = (await h.kms.createDataKeyWithoutPlaintext(carol, { keyId: key.keyId })).cipherText;
      const kept = (await h.kms.encryptData(carol, { keyId: survivor.keyId, plainText: "stays" })).cipherText;
      for (const days of [6, 1097, 0, -7, 7.5, "abc", "", undefined]) {
        await rejects(t, h.kms.scheduleKeyDeletion(alice, { keyId: key.keyId, pendingDays: days as number }), "KMS.1401", String(days));
      }
      const longest = await h.kms.createKey(alice, { keyAlias: "longest" });
      const far = await h.kms.scheduleKeyDeletion(alice, { keyId: longest.keyId, pendingDays: 1096 });
      t.is(far.scheduledDeletionDate, h.clock.now + 1096 * 86_400_000);

      const scheduled = await h.kms.scheduleKeyDeletion(alice, { keyId: key.keyId, pendingDays: 7 });
      t.deepEqual(scheduled, { keyId: key.keyId, keyState: 4, scheduledDeletionDate: h.clock.now + 7 * 86_400_000 });
      t.is((await describe(h, key.keyId)).scheduledDeletionDate, scheduled.scheduledDeletionDate);
      t.deepEqual(await h.kms.cancelKeyDeletion(alice, { keyId: key.keyId }), { keyId: key.keyId, keyState: 3 });
      t.is((await describe(h, key.keyId)).scheduledDeletionDate, null);
      await h.kms.scheduleKeyDeletion(alice, { keyId: key.keyId, pendingDays: 7 });
      await rejects(t, h.kms.decryptData(carol, { cipherText: blob }), "KMS.0210");

      h.clock.advanceDays(6);
      t.deepEqual((await h.kms.deleteDueKeys()).done, []);
      t.is((await describe(h, key.keyId)).keyState, 4);
      h.clock.advanceDays(1);
      t.deepEqual((await h.kms.deleteDueKeys()).done, [key.keyId]);
      t.deepEqual((await h.kms.deleteDueKeys()).done, [], "once");

      await rejects(t, h.kms.describeKey(alice, { keyId: key.keyId }), "KMS.0207");
      await rejects(t, h.kms.decryptData(carol, { cipherText: blob }), "KMS.2201");
      await rejects(t, h.kms.decryptDataKey(carol, { keyId: key.keyId, cipherText: keyBlob, datakeyCipherLength: 32 }), "KMS.0207");
      t.is((await h.kms.listKeys(alice)).keys.includes(key.keyId), false);
      // The alias is free again; a new key under it is a different key that cannot open the old blobs.
      const reborn = await h.kms.createKey(alice, { keyAlias: "doomed" });
      t.not(reborn.keyId, key.keyId);
      const versions = await h.store.keys.listVersions(P, key.keyId);
      t.deepEqual(versions, [], "the wrapped versions are gone from the store");

      await h.restart();
      await rejects(t, h.kms.decryptData(h.ctx("carol"), { cipherText: blob }), "KMS.2201", "after a restart too");
      t.is((await h.kms.decryptData(h.ctx("carol"), { cipherText: kept })).plainText.toString(), "stays");
      const audit = await h.store.audit.query({ projectId: P, keyId: key.keyId, action: "deleteKey" });
      t.is(audit.records.length, 1);
      t.like(audit.records[0], { outcome: "success", principalId: "system", source: "scheduler" });
    },
  },
  {
    title: "deleteDueKeys: a key whose versions the backend fails to destroy stays pending deletion, is reported and retried; the rest of the batch is deleted",
    async run(t, h) {
      const alice = h.ctx("alice");
      const carol = h.ctx("carol");
      const keys: Array<{ keyId: string; blob: Buffer }> = [];
      for (const alias of ["first", "stuck", "last"]) {
        const key = await h.kms.createKey(alice, { keyAlias: alias });
        if (alias === "stuck") await h.kms.rotateKeyOnDemand(alice, { keyId: key.keyId });
        keys.push({ keyId: key.keyId, blob: (await h.kms.encryptData(carol, { keyId: key.keyId, plainText: alias })).cipherText });
      }
      for (const { keyId } of keys) {
        await h.kms.scheduleKeyDeletion(alice, { keyId, pendingDays: 7 });
        h.clock.now += 1;
      }
      const [first, stuck, last] = keys as [typeof keys[0], typeof keys[0], typeof keys[0]];
      const material = (await h.store.keys.listVersions(P, stuck.keyId)).map((v) => v.material.toString("hex"));
      // The token refuses to destroy the stuck key's version 2 (version 1 goes: a deletion half done).
      let broken = true;
      const destroyed: string[] = [];
      const real = h.backend;
      const backend = new Proxy(real, {
        get(target, name) {
          if (name === "destroyVersion") {
            return (id: string): void => {
              if (broken && id === `${P}/${stuck.keyId}:2`) throw new Error("CKR_DEVICE_ERROR");
              target.destroyVersion(id);
              destroyed.push(id);
            };
          }
          const value: unknown = Reflect.get(target, name, target);
          return typeof value === "function" ? value.bind(target) : value;
        },
      });
      const warnings: string[] = [];
      const kms = h.reconfigure({ backend, warn: (message) => warnings.push(message) });
      h.clock.advanceDays(8);

      const report = await kms.deleteDueKeys();
      t.deepEqual(report.done, [first.keyId, last.keyId], "the keys after the stuck one are deleted in the same sweep");
      t.deepEqual(report.skipped.map((s) => s.keyId), [stuck.keyId]);
      t.like(await describe(h, stuck.keyId), { keyState: 4 }, "still pending deletion");
      t.is((await h.store.keys.listVersions(P, stuck.keyId)).length, 2, "its wrapped versions are kept until the token has destroyed them");
      await rejects(t, kms.decryptData(carol, { cipherText: stuck.blob }), "KMS.0210");
      t.is(warnings.length, 1);
      t.true(warnings[0]!.includes(stuck.keyId), warnings[0]);
      t.true(material.every((hex) => !warnings[0]!.includes(hex) && !report.skipped[0]!.reason.includes(hex)), "no key material in the report");
      await rejects(t, kms.describeKey(alice, { keyId: first.keyId }), "KMS.0207");
      await rejects(t, kms.describeKey(alice, { keyId: last.keyId }), "KMS.0207");

      t.deepEqual((await kms.deleteDueKeys()).skipped.map((s) => s.keyId), [stuck.keyId], "retried while the token refuses");
      broken = false;
      t.deepEqual(await kms.deleteDueKeys(), { done: [stuck.keyId], skipped: [] }, "retried, and done once the token destroys it");
      t.true(destroyed.includes(`${P}/${stuck.keyId}:2`));
      t.deepEqual(await h.store.keys.listVersions(P, stuck.keyId), []);
      await rejects(t, kms.decryptData(carol, { cipherText: stuck.blob }), "KMS.2201");
      const audit = await h.store.audit.query({ projectId: P, action: "deleteKey" });
      t.deepEqual(audit.records.map((r) => [r.keyId, r.outcome]), [[first.keyId, "success"], [last.keyId, "success"], [stuck.keyId, "success"]]);
    },
  },
  {
    title: "a deletion cancelled before the sweeper runs wins: the key stays, disabled",
    async run(t, h) {
      const alice = h.ctx("alice");
      const key = await h.kms.createKey(alice, { keyAlias: "reprieve" });
      await h.kms.scheduleKeyDeletion(alice, { keyId: key.keyId, pendingDays: 7 });
      h.clock.advanceDays(8);
      await h.kms.cancelKeyDeletion(alice, { keyId: key.keyId });
      t.deepEqual((await h.kms.deleteDueKeys()).done, []);
      t.is((await describe(h, key.keyId)).keyState, 3);
      await h.kms.enableKey(alice, { keyId: key.keyId });
      t.is((await h.kms.encryptData(h.ctx("carol"), { keyId: key.keyId, plainText: "alive" })).keyId, key.keyId);
    },
  },
  {
    title: "a deletion cancelled and scheduled again while the sweeper is on its way to the key waits for the new date",
    async run(t, h) {
      const alice = h.ctx("alice");
      const key = await h.kms.createKey(alice, { keyAlias: "rescheduled" });
      const blob = (await h.kms.encryptData(h.ctx("carol"), { keyId: key.keyId, plainText: "thirty more days" })).cipherText;
      await h.kms.scheduleKeyDeletion(alice, { keyId: key.keyId, pendingDays: 7 });
      h.clock.advanceDays(7);
      // The sweeper has listed the key as due; before it destroys it, the owner cancels the
      // deletion and schedules it again, 30 days out (the window is the sweeper's reads of this
      // key, and every key before it in the batch).
      let rescheduled: number | undefined;
      const keys = h.store.keys;
      const listVersions = keys.listVersions.bind(keys);
      keys.listVersions = async (projectId, keyId) => {
        if (keyId === key.keyId && rescheduled === undefined) {
          await h.kms.cancelKeyDeletion(alice, { keyId });
          rescheduled = (await h.kms.scheduleKeyDeletion(alice, { keyId, pendingDays: 30 })).scheduledDeletionDate;
        }
        return listVersions(projectId, keyId);
      };
      const sweep = await h.kms.deleteDueKeys();
      t.deepEqual(sweep.done, [], "not due any more");
      t.like(await describe(h, key.keyId), { keyState: 4, scheduledDeletionDate: rescheduled });
      t.deepEqual((await h.store.audit.query({ keyId: key.keyId, action: "deleteKey", outcome: "success" })).records, []);
      // Reprieved within the new period, the key decrypts what it sealed.
      await h.kms.cancelKeyDeletion(alice, { keyId: key.keyId });
      await h.kms.enableKey(alice, { keyId: key.keyId });
      t.is((await h.kms.decryptData(h.ctx("carol"), { cipherText: blob })).plainText.toString(), "thirty more days");
      // Scheduled again, it goes at its date and not before.
      const again = await h.kms.scheduleKeyDeletion(alice, { keyId: key.keyId, pendingDays: 7 });
      h.clock.now = again.scheduledDeletionDate - 1;
      t.deepEqual((await h.kms.deleteDueKeys()).done, []);
      h.clock.now = again.scheduledDeletionDate;
      t.deepEqual((await h.kms.deleteDueKeys()).done, [key.keyId]);
    },
  },
  {
    title: "default keys: made on first use by a service (by alias or by the request's service), flagged, one per service and project, and protected",
    async run(t, h) {
      const carol = h.ctx("carol");
      const alice = h.ctx("alice");
      await rejects(t, h.kms.describeKey(alice, { keyId: "obs/default" }), "KMS.0207", "not there before first use");
      await rejects(t, h.kms.decryptDataKey(carol, { keyId: "obs/default", cipherText: Buffer.alloc(60), datakeyCipherLength: 9 }), "KMS.0207", "decryption makes none");
      const first = await h.kms.encryptData(carol, { keyId: "obs/default", plainText: "photo" });
      const details = await h.kms.describeKey(alice, { keyId: "obs/default" });
      t.like(details, { keyId: first.keyId, keyAlias: "obs/default", defaultKeyFlag: true, keyState: 2, keySpec: "AES_256" });
      t.is((await h.kms.encryptData(carol, { keyId: "obs/default", plainText: "again" })).keyId, first.keyId, "the same key after");
      t.is((await h.kms.encryptData(carol, { keyId: "alias/obs/default", plainText: "again" })).keyId, first.keyId, "by alias/<alias> too");
      const ims = await h.kms.encryptData(carol, { keyId: "alias/ims/default", plainText: "image" });
      t.like(await h.kms.describeKey(alice, { keyId: ims.keyId }), { keyAlias: "ims/default", defaultKeyFlag: true }, "first use by alias/<alias>");

      // Concurrent first uses make one key.
      const results = await Promise.all(Array.from({ length: 12 }, (_, i) => h.kms.createDataKey(h.ctx("carol"), { keyId: "evs/default", datakeyLength: 8 * (i + 1) })));
      t.is(new Set(results.map((r) => r.keyId)).size, 1);
      // The service in the request context names its default key when no key is given.
      const rds = await h.kms.encryptData({ ...h.ctx("carol"), service: "rds" }, { plainText: "row" });
      t.is((await h.kms.describeKey(alice, { keyId: rds.keyId })).keyAlias, "rds/default");
      await rejects(t, h.kms.encryptData(carol, { plainText: "no key, no service" }), "KMS.0204");
      await rejects(t, h.kms.encryptData(carol, { keyId: "foo/default", plainText: "unknown service" }), "KMS.0207");

      const listed = await h.kms.listKeys(alice);
      t.deepEqual(listed.keyDetails.filter((key) => key.defaultKeyFlag).map((key) => key.keyAlias).sort(), ["evs/default", "ims/default", "obs/default", "rds/default"]);
      // Project Q gets its own.
      const inQ = await h.kms.encryptData(h.ctx("bob", Q), { keyId: "obs/default", plainText: "q" });
      t.not(inQ.keyId, first.keyId);

      const keyId = first.keyId;
      await rejects(t, h.kms.disableKey(alice, { keyId }), "KMS.0211");
      await rejects(t, h.kms.scheduleKeyDeletion(alice, { keyId, pendingDays: 30 }), "KMS.0211");
      await rejects(t, h.kms.updateKeyAlias(alice, { keyId, keyAlias: "mine" }), "KMS.0211");
      await rejects(t, h.kms.enableKeyRotation(alice, { keyId }), "KMS.0211");
      await rejects(t, h.kms.rotateKeyOnDemand(alice, { keyId }), "KMS.0211");
      await rejects(t, h.kms.createGrant(alice, { keyId, granteePrincipal: "frank", operations: ["encrypt-data"] }), "KMS.0211");
      await rejects(t, h.kms.updateKeyDescription(alice, { keyId, keyDescription: "mine now" }), "KMS.0211");
      await rejects(t, h.kms.createKeyTag(alice, { keyId, tag: { key: "owner", value: "me" } }), "KMS.0211");
      await rejects(t, h.kms.batchKeyTags(alice, { keyId, action: "create", tags: [{ key: "owner", value: "me" }] }), "KMS.0211");
      t.deepEqual(await h.kms.listKeyTags(alice, { keyId }), { tags: [] });
      await rejects(t, h.kms.createKey(alice, { keyAlias: "obs/default" }), "KMS.1101");
      t.is((await describe(h, keyId)).keyState, 2);
      t.is((await h.kms.decryptData(carol, { cipherText: first.cipherText })).plainText.toString(), "photo");
    },
  },
  {
    title: "quotas: custom keys per project, grants and tags per key are enforced and reported; default keys are outside the key quota",
    options: { limits: { customKeysPerProject: 3, grantsPerKey: 2, tagsPerKey: 10 } },
    async run(t, h) {
      const alice = h.ctx("alice");
      const keys: string[] = [];
      for (let i = 0; i < 3; i++) keys.push((await h.kms.createKey(alice, { keyAlias: `q-${i}` })).keyId);
      await rejects(t, h.kms.createKey(alice, { keyAlias: "q-3" }), "KMS.1105");
      // Default keys are not counted, and can still be made.
      await h.kms.encryptData(h.ctx("carol"), { keyId: "sfs/default", plainText: "share" });
      t.deepEqual(await h.kms.getUserInstances(alice), { instanceNum: 3 });
      // Other projects have their own quota.
      await h.kms.createKey(h.ctx("bob", Q), { keyAlias: "q-0" });

      const key = keys[0]!;
      await h.kms.createGrant(alice, { keyId: key, granteePrincipal: "frank", operations: ["encrypt-data"] });
      await h.kms.createGrant(alice, { keyId: key, granteePrincipal: "erin", operations: ["decrypt-data"] });
      await rejects(t, h.kms.createGrant(alice, { keyId: key, granteePrincipal: "carol", operations: ["describe-key"] }), "KMS.2404");
      for (let i = 0; i < 10; i++) await h.kms.createKeyTag(alice, { keyId: key, tag: { key: `tag${i}`, value: `${i}` } });
      await h.kms.createKeyTag(alice, { keyId: key, tag: { key: "tag0", value: "replaced" } });
      await rejects(t, h.kms.createKeyTag(alice, { keyId: key, tag: { key: "tag10", value: "x" } }), "KMS.0409");

      t.deepEqual(await h.kms.getUserQuotas(alice), {
        quotas: {
          resources: [
            { type: "CMK", used: 3, quota: 3 },
            { type: "grant_per_CMK", used: 2, quota: 2 },
            { type: "tag_per_CMK", used: 10, quota: 10 },
          ],
        },
      });
      t.is((await h.kms.getUserQuotas(h.ctx("dave"))).quotas.resources[0]!.used, 3, "auditors read quotas");
      await rejects(t, h.kms.getUserQuotas(h.ctx("carol")), "KMS.0306");

      // A deleted key frees its place.
      await h.kms.scheduleKeyDeletion(alice, { keyId: keys[2]!, pendingDays: 7 });
      await rejects(t, h.kms.createKey(alice, { keyAlias: "q-3" }), "KMS.1105", "a key pending deletion still counts");
      h.clock.advanceDays(7);
      await h.kms.deleteDueKeys();
      await h.kms.createKey(alice, { keyAlias: "q-3" });
    },
  },
  {
    title: "list-keys-by-tags (resource_instances): tags all / any / not all / not any, alias match, offset and limit, count; bad conditions refused; another project's keys never",
    async run(t, h) {
      const alice = h.ctx("alice");
      const make = async (alias: string, tags: Record<string, string>): Promise<string> => {
        const { keyId } = await h.kms.createKey(alice, { keyAlias: alias });
        if (Object.keys(tags).length > 0) await h.kms.batchKeyTags(alice, { keyId, action: "create", tags: Object.entries(tags).map(([key, value]) => ({ key, value })) });
        return keyId;
      };
      const web = await make("app/web", { env: "prod", team: "web" });
      const db = await make("app/db", { env: "prod", team: "data" });
      const dev = await make("dev/web", { env: "dev", team: "web" });
      const bare = await make("bare", {});
      await h.kms.createKey(h.ctx("bob", Q), { keyAlias: "app/web" }).then(({ keyId }) =>
        h.kms.createKeyTag(h.ctx("bob", Q), { keyId, tag: { key: "env", value: "prod" } }));

      const ids = async (request: Omit<Parameters<Kms["listKeysByTags"]>[1], "action">): Promise<string[]> =>
        ((await h.kms.listKeysByTags(alice, { action: "filter", ...request })).keys ?? []).map((k) => k.keyId);
      t.deepEqual(await ids({}), [web, db, dev, bare], "no condition: every key of the project, in creation order");
      t.deepEqual(await ids({ tags: [{ key: "env", values: ["prod"] }] }), [web, db]);
      t.deepEqual(await ids({ tags: [{ key: "env", values: ["prod"] }, { key: "team", values: ["web"] }] }), [web], "tags: every condition");
      t.deepEqual(await ids({ tags: [{ key: "env", values: ["dev", "prod"] }] }), [web, db, dev], "values: any one of them");
      t.deepEqual(await ids({ tags: [{ key: "team", values: [] }] }), [web, db, dev], "no values: any value");
      t.deepEqual(await ids({ tagsAny: [{ key: "team", values: ["data"] }, { key: "env", values: ["dev"] }] }), [db, dev], "tags_any: one condition");
      t.deepEqual(await ids({ notTags: [{ key: "env", values: ["prod"] }, { key: "team", values: ["web"] }] }), [db, dev, bare], "not_tags: not every one");
      t.deepEqual(await ids({ notTagsAny: [{ key: "team", values: ["data"] }, { key: "env", values: ["dev"] }] }), [web, bare], "not_tags_any: none");
      t.deepEqual(await ids({ matches: [{ key: "resource_name", value: "web" }] }), [web, dev], "matches: the alias contains the value");
      t.deepEqual(await ids({ matches: [{ key: "resource_name", value: "w".repeat(255) }] }), [], "matches: a value of 255 characters");
      t.deepEqual(await ids({ tags: [{ key: "env", values: Array.from({ length: 10 }, (_, i) => (i === 9 ? "dev" : `v${i}`)) }] }), [dev], "ten values");
      t.deepEqual(await ids({ offset: "1", limit: "2" }), [db, dev], "offset and limit");
      t.deepEqual(await ids({ offset: 9 }), []);

      const page = await h.kms.listKeysByTags(alice, { action: "filter", tags: [{ key: "team", values: ["web"] }], limit: 1 });
      t.is(page.totalCount, 2, "total_count counts every page");
      t.deepEqual(page.keys?.[0]?.tags, [{ key: "env", value: "prod" }, { key: "team", value: "web" }]);
      t.is(page.keys?.[0]?.details.keyAlias, "app/web");
      t.deepEqual(await h.kms.listKeysByTags(alice, { action: "count", tags: [{ key: "env", values: [] }] }), { totalCount: 3 });
      t.deepEqual(await h.kms.listKeysByTags(h.ctx("dave"), { action: "count" }), { totalCount: 4 }, "auditors may read it");

      const bad: Array<[Partial<Parameters<Kms["listKeysByTags"]>[1]>, string]> = [
        [{}, "KMS.0204"],
        [{ action: "list" as "filter" }, "KMS.0404"],
        [{ action: "filter", limit: 0 }, "KMS.1601"],
        [{ action: "filter", limit: "1001" }, "KMS.1601"],
        [{ action: "filter", offset: -1 }, "KMS.1602"],
        [{ action: "filter", tags: [{ key: "", values: [] }] }, "KMS.0411"],
        [{ action: "filter", tags: [{ key: "env", values: ["x".repeat(44)] }] }, "KMS.0410"],
        [{ action: "filter", tags: [{ key: "env", values: [] }, { key: "env", values: ["prod"] }] }, "KMS.0308"],
        [{ action: "filter", tagsAny: Array.from({ length: 11 }, (_, i) => ({ key: `k${i}`, values: [] })) }, "KMS.0409"],
        // Huawei's codes (OTC error_code.rst): KMS.0413 "Too many tag values" (the values list of a
        // tag), KMS.0403 "Invalid match key", KMS.0402 "Invalid match value", KMS.0415 "Invalid matches".
        [{ action: "filter", notTags: [{ key: "env", values: Array.from({ length: 11 }, (_, i) => `v${i}`) }] }, "KMS.0413"],
        [{ action: "filter", matches: [{ key: "key_alias", value: "web" }] }, "KMS.0403"],
        [{ action: "filter", matches: [{ key: "resource_name", value: "" }] }, "KMS.0402"],
        [{ action: "filter", matches: [{ key: "resource_name", value: "w".repeat(256) }] }, "KMS.0402"],
        [{ action: "filter", matches: [{ key: "resource_name", value: 7 as unknown as string }] }, "KMS.0402"],
        [{ action: "filter", matches: [{ key: "resource_name", value: "web" }, { key: "resource_name", value: "db" }] }, "KMS.0415"],
        [{ action: "filter", matches: { key: "resource_name", value: "web" } as unknown as [] }, "KMS.0415"],
        [{ action: "filter", matches: [null as unknown as { key: string; value: string }] }, "KMS.0415"],
      ];
      for (const [request, code] of bad) await rejects(t, h.kms.listKeysByTags(alice, request as Parameters<Kms["listKeysByTags"]>[1]), code as KmsError["code"], JSON.stringify(request));
      await rejects(t, h.kms.listKeysByTags(h.ctx("erin"), { action: "count" }), "KMS.0306", "no role");
      // Huawei's conditions carry their values list, empty for any value, never absent (as the HTTP schema has it).
      await rejects(t, h.kms.listKeysByTags(alice, { action: "filter", tags: [{ key: "env" } as TagCondition] }), "KMS.0204", "a condition without values");

      // Huawei: limit defaults to 10 for filter; total_count still counts every match.
      const more: string[] = [];
      for (let i = 0; i < 7; i++) more.push(await make(`more-${i}`, {}));
      const first = await h.kms.listKeysByTags(alice, { action: "filter" });
      t.is(first.totalCount, 11);
      t.deepEqual(first.keys?.map((k) => k.keyId), [web, db, dev, bare, ...more].slice(0, 10), "the default page is 10 keys");
    },
  },
];
