/**
 * Who may do what, through the Kms, one body for both tokens (kms-access-emulator.test.ts,
 * kms-access-softhsm.test.ts): roles, isolation between projects (another project's key is
 * missing; a principal outside a project learns nothing), grants (create, use, list, retire,
 * revoke, domain grants, no widening), tags, disabled principals.
 */
import { KmsError } from "../../src/kms/errors.js";
import type { KmsStore } from "../../src/kms/store/store.js";
import type { KmsHarness } from "./kms-fixtures.js";
import { P, Q, rejects, type KmsScenario } from "./kms-fixtures.js";

/** The error (code, status, message) a call ends with, or "ok". */
async function answer(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "ok";
  } catch (error) {
    if (!(error instanceof KmsError)) throw error;
    return `${error.code} ${error.status} ${error.message}`;
  }
}

/** Every keyed request, for one principal and key reference. */
function keyedCalls(h: KmsHarness, principal: string, project: string, keyId: string, blob: Buffer): Array<[string, () => Promise<unknown>]> {
  const c = (): ReturnType<KmsHarness["ctx"]> => h.ctx(principal, project);
  return [
    ["describe-key", () => h.kms.describeKey(c(), { keyId })],
    ["enable-key", () => h.kms.enableKey(c(), { keyId })],
    ["disable-key", () => h.kms.disableKey(c(), { keyId })],
    ["schedule-key-deletion", () => h.kms.scheduleKeyDeletion(c(), { keyId, pendingDays: 7 })],
    ["cancel-key-deletion", () => h.kms.cancelKeyDeletion(c(), { keyId })],
    ["update-key-alias", () => h.kms.updateKeyAlias(c(), { keyId, keyAlias: "stolen" })],
    ["update-key-description", () => h.kms.updateKeyDescription(c(), { keyId, keyDescription: "stolen" })],
    ["encrypt-data", () => h.kms.encryptData(c(), { keyId, plainText: "x" })],
    ["decrypt-data (named)", () => h.kms.decryptData(c(), { keyId, cipherText: blob })],
    ["create-datakey", () => h.kms.createDataKey(c(), { keyId })],
    ["create-datakey-without-plaintext", () => h.kms.createDataKeyWithoutPlaintext(c(), { keyId })],
    ["decrypt-datakey", () => h.kms.decryptDataKey(c(), { keyId, cipherText: blob, datakeyCipherLength: blob.length - 51 })],
    ["enable-key-rotation", () => h.kms.enableKeyRotation(c(), { keyId })],
    ["get-key-rotation-status", () => h.kms.getKeyRotationStatus(c(), { keyId })],
    ["rotate-on-demand", () => h.kms.rotateKeyOnDemand(c(), { keyId })],
    ["create-grant", () => h.kms.createGrant(c(), { keyId, granteePrincipal: principal === "frank" ? "erin" : "frank", operations: ["encrypt-data"] })],
    ["list-grants", () => h.kms.listGrants(c(), { keyId })],
    ["create-key-tag", () => h.kms.createKeyTag(c(), { keyId, tag: { key: "k", value: "v" } })],
    ["list-key-tags", () => h.kms.listKeyTags(c(), { keyId })],
    ["key usage", () => h.kms.getKeyUsage(c(), { keyId })],
  ];
}

export const ACCESS_SCENARIOS: KmsScenario[] = [
  {
    title: "roles: key administrators manage but cannot use keys, cryptographic users use but cannot manage, auditors read, others nothing",
    async run(t, h) {
      const key = await h.kms.createKey(h.ctx("alice"), { keyAlias: "roles" });
      const keyId = key.keyId;
      const blob = (await h.kms.encryptData(h.ctx("carol"), { keyId, plainText: "x" })).cipherText;
      const allowed: Record<string, string[]> = {
        alice: ["describe-key", "disable-key", "update-key-alias", "update-key-description", "enable-key-rotation", "get-key-rotation-status", "rotate-on-demand", "create-grant", "list-grants", "create-key-tag", "list-key-tags", "key usage"],
        carol: ["describe-key", "encrypt-data", "decrypt-data (named)", "create-datakey", "create-datakey-without-plaintext", "list-key-tags"],
        dave: ["describe-key", "get-key-rotation-status", "list-grants", "list-key-tags", "key usage"],
        erin: [],
      };
      for (const [principal, allowedOps] of Object.entries(allowed)) {
        for (const [name, call] of keyedCalls(h, principal, P, keyId, blob)) {
          if (name === "decrypt-datakey" || name === "enable-key" || name === "cancel-key-deletion" || name === "schedule-key-deletion") continue;
          const got = await answer(call());
          if (allowedOps.includes(name)) t.false(got.startsWith("KMS.0306"), `${principal} may ${name}: ${got}`);
          else t.true(got.startsWith("KMS.0306"), `${principal} may not ${name}: ${got}`);
          // Undo what changes the key for the next principal.
          if (name === "disable-key" && got === "ok") await h.kms.enableKey(h.ctx("alice"), { keyId });
          if (name === "update-key-alias" && got === "ok") await h.kms.updateKeyAlias(h.ctx("alice"), { keyId, keyAlias: "roles" });
        }
      }
      await rejects(t, h.kms.createKey(h.ctx("carol"), { keyAlias: "mine" }), "KMS.0306");
      await rejects(t, h.kms.listKeys(h.ctx("erin")), "KMS.0306");
      await rejects(t, h.kms.genRandom(h.ctx("dave"), { randomDataLength: 8 }), "KMS.0306");
      await rejects(t, h.kms.queryAuditLog(h.ctx("alice")), "KMS.0306");
      await rejects(t, h.kms.describeKey(h.ctx("nobody"), { keyId }), "KMS.0306", "an unknown principal");
      // Made a principal and given a role: effective at once (the refusal above is not cached).
      await h.kms.admin.createPrincipal({ principalId: "nobody", domainId: "domain1" });
      await h.kms.admin.addRole("nobody", P, "auditor");
      t.is((await h.kms.describeKey(h.ctx("nobody"), { keyId })).keyId, keyId);
      await rejects(t, h.kms.encryptData({ ...h.ctx("carol"), service: "xyz" as "obs" }, { plainText: "x" }), "KMS.0308", "an unknown service");
      await rejects(t, h.kms.encryptData({ ...h.ctx("carol"), requestId: "" }, { keyId, plainText: "x" }), "KMS.0308", "a malformed context");
      // A disabled principal is refused everything, at once.
      await h.kms.admin.setPrincipalDisabled("carol", true);
      await rejects(t, h.kms.encryptData(h.ctx("carol"), { keyId, plainText: "x" }), "KMS.0306");
      await h.kms.admin.setPrincipalDisabled("carol", false);
      await h.kms.encryptData(h.ctx("carol"), { keyId, plainText: "x" });
      // A role taken away goes at once.
      await h.kms.admin.removeRole("carol", P, "crypto_user");
      await rejects(t, h.kms.encryptData(h.ctx("carol"), { keyId, plainText: "x" }), "KMS.0306");
      await h.kms.admin.addRole("carol", P, "crypto_user");
      await h.kms.encryptData(h.ctx("carol"), { keyId, plainText: "x" });
    },
  },
  {
    title: "isolation: a principal of project Q can neither see, use, change nor learn the existence of project P's keys",
    async run(t, h) {
      const alice = h.ctx("alice");
      const key = await h.kms.createKey(alice, { keyAlias: "secret-p" });
      await h.kms.createGrant(alice, { keyId: key.keyId, granteePrincipal: "frank", operations: ["describe-key"] });
      await h.kms.createKeyTag(alice, { keyId: key.keyId, tag: { key: "owner", value: "p" } });
      const blob = (await h.kms.encryptData(h.ctx("carol"), { keyId: key.keyId, plainText: "p's data" })).cipherText;
      const absent = "00000000-0000-4000-8000-000000000000";
      // Bob, in his own project Q, naming P's key: exactly what he gets for a key that does not exist.
      for (const [name, call] of keyedCalls(h, "bob", Q, key.keyId, blob)) {
        const forP = await answer(call());
        const forNothing = await answer(keyedCalls(h, "bob", Q, absent, blob).find(([other]) => other === name)![1]());
        t.is(forP, forNothing, name);
        t.true(forP.startsWith("KMS.0207"), `${name}: ${forP}`);
      }
      // By alias too.
      await rejects(t, h.kms.describeKey(h.ctx("bob", Q), { keyId: "secret-p" }), "KMS.0207");
      // Bob naming project P in his requests (he holds no role there): refused, whether the key exists or not.
      for (const [name, call] of keyedCalls(h, "bob", P, key.keyId, blob)) {
        const existing = await answer(call());
        const missing = await answer(keyedCalls(h, "bob", P, absent, blob).find(([other]) => other === name)![1]());
        t.is(existing, missing, name);
        t.true(existing.startsWith("KMS.0306"), `${name}: ${existing}`);
      }
      await rejects(t, h.kms.listKeys(h.ctx("bob", P)), "KMS.0306");
      await rejects(t, h.kms.decryptData(h.ctx("bob", P), { cipherText: blob }), "KMS.0306");
      // Q's listings show nothing of P.
      t.is((await h.kms.listKeys(h.ctx("bob", Q))).total, 0);
      t.deepEqual((await h.kms.listProjectTags(h.ctx("bob", Q))).tags, []);
      t.deepEqual((await h.kms.queryAuditLog(h.ctx("bob", Q), { keyId: key.keyId })).records.filter((r) => r.projectId !== Q), []);
      t.is((await h.kms.getUserInstances(h.ctx("bob", Q))).instanceNum, 0);
      // Aliases are per project: Q may take P's alias, and the two keys stay apart.
      const bobs = await h.kms.createKey(h.ctx("bob", Q), { keyAlias: "secret-p" });
      t.not(bobs.keyId, key.keyId);
      t.is((await h.kms.describeKey(alice, { keyId: "secret-p" })).keyId, key.keyId);
      t.is((await h.kms.decryptData(h.ctx("carol"), { cipherText: blob })).plainText.toString(), "p's data");
      t.is((await h.kms.describeKey(alice, { keyId: key.keyId })).keyState, 2, "nothing Bob did reached the key");
    },
  },
  {
    title: "grants: a grantee without roles uses exactly the granted operations on exactly that key; list, retire, revoke",
    async run(t, h) {
      const alice = h.ctx("alice");
      const frank = (): ReturnType<KmsHarness["ctx"]> => h.ctx("frank");
      const key = await h.kms.createKey(alice, { keyAlias: "granted" });
      const other = await h.kms.createKey(alice, { keyAlias: "not-granted" });
      await rejects(t, h.kms.encryptData(frank(), { keyId: key.keyId, plainText: "x" }), "KMS.0306", "before the grant");
      const { grantId } = await h.kms.createGrant(alice, {
        keyId: key.keyId, granteePrincipal: "frank", operations: ["encrypt-data", "decrypt-data", "describe-key"], name: "app/frank", retiringPrincipal: "carol",
      });
      t.regex(grantId, /^[0-9a-f]{64}$/u);
      const sealed = await h.kms.encryptData(frank(), { keyId: key.keyId, plainText: "via grant" });
      t.is((await h.kms.decryptData(frank(), { cipherText: sealed.cipherText })).plainText.toString(), "via grant");
      t.is((await h.kms.describeKey(frank(), { keyId: "granted" })).keyId, key.keyId, "by alias too");
      await rejects(t, h.kms.createDataKey(frank(), { keyId: key.keyId }), "KMS.0306", "not granted");
      await rejects(t, h.kms.disableKey(frank(), { keyId: key.keyId }), "KMS.0306");
      await rejects(t, h.kms.encryptData(frank(), { keyId: other.keyId, plainText: "x" }), "KMS.0306", "another key");
      await rejects(t, h.kms.listKeys(frank()), "KMS.0306");
      await rejects(t, h.kms.createGrant(frank(), { keyId: key.keyId, granteePrincipal: "erin", operations: ["encrypt-data"] }), "KMS.0306");

      const listed = await h.kms.listGrants(alice, { keyId: key.keyId });
      t.is(listed.total, 1);
      t.like(listed.grants[0], {
        keyId: key.keyId, grantId, granteePrincipal: "frank", granteePrincipalType: "user", operations: ["describe-key", "encrypt-data", "decrypt-data"],
        issuingPrincipal: "alice", name: "app/frank", retiringPrincipal: "carol", creationDate: h.clock.now,
      });
      t.deepEqual((await h.kms.listRetirableGrants(h.ctx("carol"))).grants.map((g) => g.grantId), [grantId]);
      t.deepEqual((await h.kms.listRetirableGrants(h.ctx("erin"))).grants, []);
      await rejects(t, h.kms.retireGrant(h.ctx("erin"), { keyId: key.keyId, grantId }), "KMS.0306", "not issuer, retiring principal or grantee with retire-grant");
      await rejects(t, h.kms.retireGrant(frank(), { keyId: key.keyId, grantId }), "KMS.0306", "the grantee lacks retire-grant");
      await h.kms.retireGrant(h.ctx("carol"), { keyId: key.keyId, grantId });
      await rejects(t, h.kms.encryptData(frank(), { keyId: key.keyId, plainText: "x" }), "KMS.0306", "retired");
      await rejects(t, h.kms.retireGrant(h.ctx("carol"), { keyId: key.keyId, grantId }), "KMS.2501");
      // An empty key_id is a missing one, for retire as for revoke.
      await rejects(t, h.kms.retireGrant(h.ctx("carol"), { keyId: "", grantId }), "KMS.0204", "retire, empty key_id");
      await rejects(t, h.kms.revokeGrant(alice, { keyId: "", grantId }), "KMS.0204", "revoke, empty key_id");

      // A grantee holding retire-grant retires its own grant; revoke-grant is the administrator's.
      const own = await h.kms.createGrant(alice, { keyId: key.keyId, granteePrincipal: "frank", operations: ["encrypt-data", "retire-grant"] });
      await h.kms.retireGrant(frank(), { keyId: key.keyId, grantId: own.grantId });
      const revoked = await h.kms.createGrant(alice, { keyId: key.keyId, granteePrincipal: "frank", operations: ["encrypt-data"] });
      await rejects(t, h.kms.revokeGrant(h.ctx("carol"), { keyId: key.keyId, grantId: revoked.grantId }), "KMS.0306");
      await h.kms.revokeGrant(alice, { keyId: key.keyId, grantId: revoked.grantId });
      await rejects(t, h.kms.encryptData(frank(), { keyId: key.keyId, plainText: "x" }), "KMS.0306", "revoked");
      await rejects(t, h.kms.revokeGrant(alice, { keyId: key.keyId, grantId: revoked.grantId }), "KMS.2501");
      await rejects(t, h.kms.revokeGrant(alice, { keyId: key.keyId, grantId: "xyz" }), "KMS.2501");
      await rejects(t, h.kms.revokeGrant(alice, { keyId: other.keyId, grantId: "a".repeat(64) }), "KMS.2501");
      // A grant of another key of the project: Huawei's KMS.2502 "grant_id and key_id do not match".
      const elsewhere = await h.kms.createGrant(alice, { keyId: key.keyId, granteePrincipal: "frank", operations: ["encrypt-data"], retiringPrincipal: "carol" });
      await rejects(t, h.kms.revokeGrant(alice, { keyId: other.keyId, grantId: elsewhere.grantId }), "KMS.2502", "revoke through another key");
      await rejects(t, h.kms.retireGrant(h.ctx("carol"), { keyId: other.keyId, grantId: elsewhere.grantId }), "KMS.2502", "retire through another key");
      // Another project's grant is no grant at all, as its key is no key.
      const theirs = await h.kms.createKey(h.ctx("bob", Q), { keyAlias: "theirs" });
      const theirGrant = await h.kms.createGrant(h.ctx("bob", Q), { keyId: theirs.keyId, granteePrincipal: "carol", operations: ["encrypt-data"], retiringPrincipal: "carol" });
      await rejects(t, h.kms.revokeGrant(alice, { keyId: other.keyId, grantId: theirGrant.grantId }), "KMS.2501", "another project's grant, revoke");
      await rejects(t, h.kms.retireGrant(h.ctx("carol"), { keyId: other.keyId, grantId: theirGrant.grantId }), "KMS.2501", "another project's grant, retire");
      await h.kms.revokeGrant(alice, { keyId: key.keyId, grantId: elsewhere.grantId });

      // Field checks.
      await rejects(t, h.kms.createGrant(alice, { keyId: key.keyId, granteePrincipal: "frank", operations: ["create-grant"] }), "KMS.2401");
      await rejects(t, h.kms.createGrant(alice, { keyId: key.keyId, granteePrincipal: "fr-ank", operations: ["encrypt-data"] }), "KMS.2402");
      await rejects(t, h.kms.createGrant(alice, { keyId: key.keyId, granteePrincipal: "frank", operations: ["encrypt-data"], retiringPrincipal: "" }), "KMS.2402");
      await rejects(t, h.kms.createGrant(alice, { keyId: key.keyId, granteePrincipal: "frank", operations: [] }), "KMS.0308");
      await rejects(t, h.kms.createGrant(alice, { keyId: key.keyId, granteePrincipal: "frank", operations: ["sign" as "encrypt-data"] }), "KMS.0308");
      await rejects(t, h.kms.createGrant(alice, { keyId: key.keyId, granteePrincipal: "frank", operations: ["encrypt-data"], name: "bad name" }), "KMS.0308");
      await rejects(t, h.kms.createGrant(alice, { keyId: key.keyId, granteePrincipal: "frank", granteePrincipalType: "group" as "user", operations: ["encrypt-data"] }), "KMS.0308");

      // Separation of duties: a key administrator cannot grant itself, or its own account, an
      // operation its roles refuse — it would hold the key's use after all. What its roles allow it
      // may grant itself, and a principal that is also a cryptographic user may grant itself use.
      await rejects(t, h.kms.createGrant(alice, { keyId: key.keyId, granteePrincipal: "alice", operations: ["decrypt-data"] }), "KMS.0306", "to itself");
      await rejects(t, h.kms.createGrant(alice, { keyId: key.keyId, granteePrincipal: "domain1", granteePrincipalType: "domain", operations: ["encrypt-data"] }), "KMS.0306", "to its account");
      await rejects(t, h.kms.createGrant(alice, { keyId: key.keyId, granteePrincipal: "alice", operations: ["describe-key", "create-datakey"] }), "KMS.0306", "one refused operation is enough");
      t.truthy((await h.kms.createGrant(alice, { keyId: key.keyId, granteePrincipal: "alice", operations: ["describe-key"] })).grantId);
      t.truthy((await h.kms.createGrant(h.ctx("mallory"), { keyId: key.keyId, granteePrincipal: "mallory", operations: ["decrypt-data"] })).grantId);
      await rejects(t, h.kms.encryptData(alice, { keyId: key.keyId, plainText: "x" }), "KMS.0306", "alice still cannot use the key");
    },
  },
  {
    title: "grants: a domain grant reaches every principal of that account, also from another project; a grantee passes on only what it holds",
    async run(t, h) {
      const alice = h.ctx("alice");
      const key = await h.kms.createKey(alice, { keyAlias: "shared" });
      const blob = (await h.kms.encryptData(h.ctx("carol"), { keyId: key.keyId, plainText: "for domain2" })).cipherText;
      await rejects(t, h.kms.decryptData(h.ctx("bob", P), { cipherText: blob }), "KMS.0306");
      await h.kms.createGrant(alice, { keyId: key.keyId, granteePrincipal: "domain2", granteePrincipalType: "domain", operations: ["decrypt-data", "create-grant"] });
      // Bob (account domain2) names the key's project in his request.
      t.is((await h.kms.decryptData(h.ctx("bob", P), { cipherText: blob })).plainText.toString(), "for domain2");
      await rejects(t, h.kms.decryptData(h.ctx("bob", Q), { cipherText: blob }), "KMS.2201", "in his own project the key does not exist");
      await rejects(t, h.kms.encryptData(h.ctx("bob", P), { keyId: key.keyId, plainText: "x" }), "KMS.0306");
      // Passing on: a subset of what he holds, not more.
      await h.kms.createGrant(h.ctx("bob", P), { keyId: key.keyId, granteePrincipal: "frank", operations: ["decrypt-data"] });
      t.is((await h.kms.decryptData(h.ctx("frank"), { cipherText: blob })).plainText.toString(), "for domain2");
      await rejects(t, h.kms.createGrant(h.ctx("bob", P), { keyId: key.keyId, granteePrincipal: "frank", operations: ["encrypt-data"] }), "KMS.0306");
      // A user grant naming an account id is not a domain grant.
      const other = await h.kms.createKey(alice, { keyAlias: "user-grant" });
      await h.kms.createGrant(alice, { keyId: other.keyId, granteePrincipal: "domain2", operations: ["describe-key"] });
      await rejects(t, h.kms.describeKey(h.ctx("bob", P), { keyId: other.keyId }), "KMS.0306");
      // A principal whose id is its account's id holds both its user grants and its account's domain grants.
      await h.kms.admin.createPrincipal({ principalId: "domain3", domainId: "domain3" });
      const third = await h.kms.createKey(alice, { keyAlias: "domain3-grant" });
      await rejects(t, h.kms.describeKey(h.ctx("domain3"), { keyId: third.keyId }), "KMS.0306", "before the grant");
      const ownAccount = await h.kms.createGrant(alice, {
        keyId: third.keyId, granteePrincipal: "domain3", granteePrincipalType: "domain", operations: ["describe-key", "retire-grant"],
      });
      t.is((await h.kms.describeKey(h.ctx("domain3"), { keyId: third.keyId })).keyId, third.keyId, "a domain grant for its own account");
      await rejects(t, h.kms.encryptData(h.ctx("domain3"), { keyId: third.keyId, plainText: "x" }), "KMS.0306", "only what the grant lists");
      await h.kms.retireGrant(h.ctx("domain3"), { keyId: third.keyId, grantId: ownAccount.grantId });
      await rejects(t, h.kms.describeKey(h.ctx("domain3"), { keyId: third.keyId }), "KMS.0306", "retired");
    },
  },
  {
    title: "principal cache: a lookup that read the principal before it was disabled does not cache what it read (a store whose reads are truly asynchronous)",
    async run(t, h) {
      const keyId = (await h.kms.createKey(h.ctx("alice"), { keyAlias: "cache-race" })).keyId;
      // The store as a networked one behaves: a read returns what was committed when it ran, and
      // its answer arrives later — here, after the principal was disabled.
      let hold: Promise<void> | undefined;
      let release = (): void => {};
      const real = h.store;
      const principals: KmsStore["principals"] = {
        ...real.principals,
        get: async (principalId) => {
          const principal = await real.principals.get(principalId);
          if (hold !== undefined) await hold;
          return principal;
        },
      };
      const store = new Proxy(real, {
        get: (target, name) => {
          if (name === "principals") return principals;
          const value: unknown = Reflect.get(target, name, target);
          return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
        },
      });
      const kms = h.reconfigure({ store, tunables: { principalCacheMs: 3_600_000 } });
      hold = new Promise((resolve) => {
        release = resolve;
      });
      const before = kms.encryptData(h.ctx("carol"), { keyId, plainText: "started before" });
      await kms.admin.setPrincipalDisabled("carol", true);
      hold = undefined;
      release();
      await before;
      await rejects(t, kms.encryptData(h.ctx("carol"), { keyId, plainText: "x" }), "KMS.0306", "disabled: refused from the moment the change returned");
      await kms.admin.setPrincipalDisabled("carol", false);
      t.is((await kms.encryptData(h.ctx("carol"), { keyId, plainText: "x" })).keyId, keyId);
    },
  },
  {
    title: "tags: at most 10 per key, Huawei's lengths, batch create/delete, per key and per project",
    async run(t, h) {
      const alice = h.ctx("alice");
      const key = await h.kms.createKey(alice, { keyAlias: "tagged" });
      const keyId = key.keyId;
      t.deepEqual(await h.kms.createKeyTag(alice, { keyId, tag: { key: "env", value: "prod" } }), { tags: [{ key: "env", value: "prod" }] });
      await h.kms.batchKeyTags(alice, { keyId, action: "create", tags: Array.from({ length: 9 }, (_, i) => ({ key: `k${i}`, value: `v${i}` })) });
      t.is((await h.kms.listKeyTags(h.ctx("carol"), { keyId })).tags.length, 10);
      await rejects(t, h.kms.createKeyTag(alice, { keyId, tag: { key: "eleventh", value: "x" } }), "KMS.0409");
      t.is((await h.kms.listKeyTags(alice, { keyId })).tags.length, 10, "a refused batch adds nothing");
      await h.kms.createKeyTag(alice, { keyId, tag: { key: "env", value: "staging" } });
      t.deepEqual((await h.kms.listKeyTags(alice, { keyId })).tags.find((tag) => tag.key === "env"), { key: "env", value: "staging" });
      const after = await h.kms.batchKeyTags(alice, { keyId, action: "delete", tags: [{ key: "k0" }, { key: "k1" }, { key: "absent" }] });
      t.is(after.tags.length, 8);
      t.deepEqual((await h.kms.deleteKeyTag(alice, { keyId, key: "k2" })).tags.length, 7);
      await h.kms.createKeyTag(alice, { keyId, tag: { key: "x".repeat(36), value: "y".repeat(43) } });
      await h.kms.createKeyTag(alice, { keyId, tag: { key: "empty", value: "" } });
      await rejects(t, h.kms.createKeyTag(alice, { keyId, tag: { key: "x".repeat(37), value: "v" } }), "KMS.0411");
      await rejects(t, h.kms.createKeyTag(alice, { keyId, tag: { key: "", value: "v" } }), "KMS.0411");
      await rejects(t, h.kms.createKeyTag(alice, { keyId, tag: { key: "k", value: "y".repeat(44) } }), "KMS.0410");
      await rejects(t, h.kms.createKeyTag(alice, { keyId, tag: { key: "a\nb", value: "v" } }), "KMS.0406");
      await rejects(t, h.kms.batchKeyTags(alice, { keyId, action: "create", tags: [] }), "KMS.0401");
      await rejects(t, h.kms.batchKeyTags(alice, { keyId, action: "filter" as "create", tags: [{ key: "a", value: "b" }] }), "KMS.0404");
      await rejects(t, h.kms.createKeyTag(h.ctx("carol"), { keyId, tag: { key: "a", value: "b" } }), "KMS.0306");
      const second = await h.kms.createKey(alice, { keyAlias: "tagged-2" });
      await h.kms.createKeyTag(alice, { keyId: second.keyId, tag: { key: "env", value: "dev" } });
      const project = await h.kms.listProjectTags(h.ctx("dave"));
      t.deepEqual(project.tags.find((tag) => tag.key === "env"), { key: "env", values: ["dev", "staging"] });
      const actions = (await h.store.audit.query({ keyId, action: "dealUnifiedTags" })).records.map((record) => record.outcome);
      t.true(actions.includes("success") && actions.includes("failure") && actions.includes("denied"));
    },
  },
  {
    title: "tags: keys and values are counted in Unicode characters and may not hold ASCII 0-31 or * < > \\ = (Huawei's character rule)",
    async run(t, h) {
      const alice = h.ctx("alice");
      const keyId = (await h.kms.createKey(alice, { keyAlias: "tag-characters" })).keyId;
      for (const bad of ["*", "<", ">", "\\", "=", "\u0000", "\u001f"]) {
        await rejects(t, h.kms.createKeyTag(alice, { keyId, tag: { key: `a${bad}b`, value: "v" } }), "KMS.0406", `key with ${JSON.stringify(bad)}`);
        await rejects(t, h.kms.createKeyTag(alice, { keyId, tag: { key: "k", value: `a${bad}b` } }), "KMS.0405", `value with ${JSON.stringify(bad)}`);
        await rejects(t, h.kms.batchKeyTags(alice, { keyId, action: "create", tags: [{ key: "ok", value: "v" }, { key: `a${bad}`, value: "v" }] }), "KMS.0406");
      }
      await rejects(t, h.kms.createKeyTag(alice, { keyId, tag: { key: "\ud800", value: "v" } }), "KMS.0406", "a lone surrogate is no character");
      await rejects(t, h.kms.createKeyTag(alice, { keyId, tag: { key: "k", value: "x\udc00" } }), "KMS.0405", "a lone surrogate is no character");
      t.deepEqual((await h.kms.listKeyTags(alice, { keyId })).tags, [], "nothing refused was set");

      // Characters, not UTF-16 units: 36 and 43 characters outside the BMP fit, one more does not.
      const emoji = "\u{1F511}";
      await h.kms.createKeyTag(alice, { keyId, tag: { key: emoji.repeat(36), value: emoji.repeat(43) } });
      await h.kms.createKeyTag(alice, { keyId, tag: { key: "é".repeat(36), value: "世".repeat(43) } });
      await rejects(t, h.kms.createKeyTag(alice, { keyId, tag: { key: emoji.repeat(37), value: "v" } }), "KMS.0411");
      await rejects(t, h.kms.createKeyTag(alice, { keyId, tag: { key: "k", value: emoji.repeat(44) } }), "KMS.0410");
      // What the rule leaves allowed: other punctuation and spaces.
      await h.kms.createKeyTag(alice, { keyId, tag: { key: "team/app, v2|x:y", value: "a b&c#d/e" } });
      t.deepEqual((await h.kms.listKeyTags(alice, { keyId })).tags.map((tag) => tag.key).sort(),
        [emoji.repeat(36), "team/app, v2|x:y", "é".repeat(36)].sort());
      t.is((await h.kms.deleteKeyTag(alice, { keyId, key: emoji.repeat(36) })).tags.length, 2);
      // A tag stored before the character rule (planted in the store) can still be deleted, one by one or in a batch.
      await h.store.tags.put(P, keyId, [{ key: "legacy=1", value: "a*b" }, { key: "legacy<2>", value: "" }]);
      t.is((await h.kms.deleteKeyTag(alice, { keyId, key: "legacy=1" })).tags.length, 3);
      t.is((await h.kms.batchKeyTags(alice, { keyId, action: "delete", tags: [{ key: "legacy<2>" }] })).tags.length, 2);

      // A batch's audit detail names its tag keys, cut to 512 UTF-16 units: a cut between the two
      // halves of a pair would leave a lone surrogate, which the audit chain cannot encode (a
      // failed request, a 500 over HTTP). Keys chosen so the 512th unit is a pair's first half.
      const other = (await h.kms.createKey(alice, { keyAlias: "tag-characters-batch" })).keyId;
      const keysWith = (pad: string): string[] => Array.from({ length: 9 }, (_, i) => `${pad}${i}${emoji.repeat(28)}`);
      const lead = ["", "x", "xx"].find((pad) => /[\ud800-\udbff]/.test(`set ${keysWith(pad).join(",")}`[511]!))!;
      const batch = keysWith(lead).map((key) => ({ key, value: "v" }));
      t.is((await h.kms.batchKeyTags(alice, { keyId: other, action: "create", tags: batch })).tags.length, 9);
      t.is((await h.kms.batchKeyTags(alice, { keyId: other, action: "delete", tags: batch.map(({ key }) => ({ key })) })).tags.length, 0);
      const details = (await h.store.audit.query({ keyId: other, action: "dealUnifiedTags" })).records.map((record) => record.detail ?? "");
      t.true(details.length === 2 && details.every((detail) => detail.length >= 510 && !/\p{Surrogate}/u.test(detail)), JSON.stringify(details.map((d) => d.length)));
    },
  },
];
