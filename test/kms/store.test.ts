// The KMS store's records through its interface: keys and versions, isolation by project, paging,
// quota counts and their enforcement inside the transaction, aliases, tags, grants, guards and
// atomic audit records, projects, principals with sealed credentials, roles, usage counters.
// Every test runs against both writers (worker thread and inline).
import test, { type ExecutionContext } from "ava";
import { randomBytes, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gcmOpen, gcmSeal } from "../../src/crypto/aead.js";
import { generateKey } from "../../src/crypto/keys.js";
import { KMS_ERRORS, KmsError } from "../../src/kms/errors.js";
import { isStoreError } from "../../src/kms/store/errors.js";
import { ROTATION_DUE_AT } from "../../src/kms/store/migrations.js";
import { credentialAad, openCredentialSecret, sealCredentialSecret, type SecretSealer } from "../../src/kms/store/secrets.js";
import { DATABASE_FILE, openSqliteStore } from "../../src/kms/store/sqlite.js";
import type { WriterMode } from "../../src/kms/store/writer.js";
import type { KeyState } from "../../src/kms/types.js";
import { event, MAC, material, newKey, openStore, rawDb, tempDir, WRITERS } from "./store-helpers.js";

const P = "project-a";
const Q = "project-b";

/** Runs `body` as one test per writer mode. */
function both(title: string, body: (t: ExecutionContext, writer: WriterMode) => Promise<void>): void {
  for (const writer of WRITERS) test(`${title} [${writer}]`, (t) => body(t, writer));
}

async function rejectsKms(t: ExecutionContext, promise: Promise<unknown>, code: keyof typeof KMS_ERRORS, message?: string): Promise<void> {
  const error = await t.throwsAsync(promise, { instanceOf: KmsError }, message);
  t.is(error?.code, code, message);
  t.is(error?.status, KMS_ERRORS[code].status, message);
}

both("keys: create, read, update, add versions (rotation counters), read material", async (t, writer) => {
  const store = await openStore(t, { writer });
  const created = await store.keys.create(newKey(P, { alias: "one", description: "first" }), { version: material("v1") });
  t.is(created.currentVersion, 1);
  t.is(created.revision, 1);
  t.is(created.rotationCount, 0);
  t.is(created.lastRotatedAt, null);
  t.deepEqual(await store.keys.get(P, created.keyId), created);
  t.deepEqual(await store.keys.getByAlias(P, "one"), created);

  const updated = await store.keys.update(P, created.keyId, { state: 4, deletionDate: 123_456, description: "second" });
  t.is(updated.state, 4);
  t.is(updated.deletionDate, 123_456);
  t.is(updated.description, "second");
  t.is(updated.alias, "one");
  t.is(updated.revision, 2);
  const back = await store.keys.update(P, created.keyId, { state: 3, deletionDate: null, rotationEnabled: true, rotationIntervalDays: 90 });
  t.is(back.deletionDate, null);
  t.true(back.rotationEnabled);
  t.is(back.rotationIntervalDays, 90);

  const { key: rotated, version: v2 } = await store.keys.addVersion(P, created.keyId, { material: Buffer.from("wrapped:v2"), createdAt: 5000 });
  t.is(v2.version, 2);
  t.true(Buffer.isBuffer(v2.material));
  t.is(rotated.currentVersion, 2);
  t.is(rotated.rotationCount, 1);
  t.is(rotated.lastRotatedAt, 5000);
  await store.keys.addVersion(P, created.keyId, material("v3"));
  t.deepEqual((await store.keys.listVersions(P, created.keyId)).map((v) => [v.version, v.material.toString()]), [
    [1, "wrapped:v1"], [2, "wrapped:v2"], [3, "wrapped:v3"],
  ]);
  const use = await store.keys.getForUse(P, created.keyId);
  t.is(use?.key.currentVersion, 3);
  t.is(use?.version?.material.toString(), "wrapped:v3");
  t.is((await store.keys.getForUse(P, created.keyId, 1))?.version?.material.toString(), "wrapped:v1");
  t.is((await store.keys.getForUse(P, created.keyId, 9))?.version, undefined);
  t.is((await store.keys.getVersion(P, created.keyId, 2))?.createdAt, 5000);
});

both("keys: a key imported later starts without material; its first version is not a rotation", async (t, writer) => {
  const store = await openStore(t, { writer });
  const key = await store.keys.create(newKey(P, { origin: "external", state: 5 }));
  t.is(key.currentVersion, 0);
  t.is((await store.keys.getForUse(P, key.keyId))?.version, undefined);
  const { key: imported } = await store.keys.addVersion(P, key.keyId, material("imported"));
  t.is(imported.currentVersion, 1);
  t.is(imported.rotationCount, 0);
  t.is(imported.lastRotatedAt, null);
});

both("keys: addVersion with ifRevision adds only to the key as the caller read it; refused, it writes nothing, not even an audit record", async (t, writer) => {
  const store = await openStore(t, { writer });
  const key = await store.keys.create(newKey(P, { alias: "conditional" }), { version: material("v1") });
  const changed = await store.keys.update(P, key.keyId, { description: "changed" });
  t.true(changed.revision > key.revision);
  await rejectsKms(t, store.keys.addVersion(P, key.keyId, material("stale"), { ifRevision: key.revision, audit: event("autoRotateKey", P, key.keyId) }), "KMS.0101");
  t.is((await store.keys.get(P, key.keyId))?.currentVersion, 1);
  t.is((await store.audit.query({ keyId: key.keyId, action: "autoRotateKey" })).records.length, 0);
  const { key: rotated } = await store.keys.addVersion(P, key.keyId, material("v2"), { ifRevision: changed.revision, audit: event("autoRotateKey", P, key.keyId) });
  t.is(rotated.currentVersion, 2);
  t.deepEqual((await store.audit.query({ keyId: key.keyId, action: "autoRotateKey" })).records.map((r) => r.outcome), ["success"]);
});

both("isolation: another project's key is exactly a missing key, for every read and write", async (t, writer) => {
  const store = await openStore(t, { writer });
  const key = await store.keys.create(newKey(P, { alias: "shared-name" }), { version: material("a") });
  await store.tags.put(P, key.keyId, [{ key: "k", value: "v" }]);
  const grant = await store.grants.create({ projectId: P, keyId: key.keyId, granteePrincipal: "u2", granteePrincipalType: "user", operations: ["encrypt-data"] });
  const missing = randomUUID();
  for (const keyId of [key.keyId, missing]) {
    const label = keyId === missing ? "missing key" : "other project's key";
    t.is(await store.keys.get(Q, keyId), undefined, label);
    t.is(await store.keys.getForUse(Q, keyId), undefined, label);
    t.is(await store.keys.getVersion(Q, keyId, 1), undefined, label);
    t.deepEqual(await store.keys.listVersions(Q, keyId), [], label);
    t.is(await store.grants.get(Q, keyId, grant.grantId), undefined, label);
    t.deepEqual(await store.grants.findForGrantee(Q, keyId, "u2"), [], label);
    t.deepEqual(await store.usage.get(Q, keyId), [], label);
    await rejectsKms(t, store.keys.update(Q, keyId, { state: 3 }), "KMS.0207", label);
    await rejectsKms(t, store.keys.addVersion(Q, keyId, material("x")), "KMS.0207", label);
    await rejectsKms(t, store.keys.destroy(Q, keyId), "KMS.0207", label);
    await rejectsKms(t, store.tags.put(Q, keyId, [{ key: "a", value: "b" }]), "KMS.0207", label);
    await rejectsKms(t, store.tags.delete(Q, keyId, ["k"]), "KMS.0207", label);
    await rejectsKms(t, store.tags.list(Q, keyId), "KMS.0207", label);
    await rejectsKms(t, store.tags.count(Q, keyId), "KMS.0207", label);
    await rejectsKms(t, store.grants.list(Q, keyId, { limit: 10 }), "KMS.0207", label);
    await rejectsKms(t, store.grants.count(Q, keyId), "KMS.0207", label);
    await rejectsKms(t, store.grants.delete(Q, keyId, grant.grantId), "KMS.0207", label);
    await rejectsKms(t, store.grants.create({ projectId: Q, keyId, granteePrincipal: "u", granteePrincipalType: "user", operations: ["describe-key"] }), "KMS.0207", label);
  }
  // The two rejections are the same error, message included.
  const [a, b] = await Promise.all([store.keys.update(Q, key.keyId, {}).catch((e: unknown) => e), store.keys.update(Q, missing, {}).catch((e: unknown) => e)]);
  t.deepEqual([(a as KmsError).code, (a as KmsError).message], [(b as KmsError).code, (b as KmsError).message]);
  t.is(await store.keys.getByAlias(Q, "shared-name"), undefined);
  t.is((await store.keys.list(Q, { limit: 100 })).total, 0);
  t.deepEqual(await store.tags.listProject(Q), []);
  t.is((await store.grants.listRetirable(Q, "nobody", { limit: 10 })).total, 0);
  // Aliases are unique per project only.
  const other = await store.keys.create(newKey(Q, { alias: "shared-name" }));
  t.is((await store.keys.getByAlias(Q, "shared-name"))?.keyId, other.keyId);
  t.is((await store.keys.get(P, key.keyId))?.state, 2, "the first project's key is untouched");
});

both("list-keys: marker/limit paging in creation order, stable while keys are created and deleted, state filter", async (t, writer) => {
  const store = await openStore(t, { writer });
  const ids: string[] = [];
  for (let i = 0; i < 25; i++) ids.push((await store.keys.create(newKey(P, { state: i % 5 === 0 ? 3 : 2 }))).keyId);
  await store.keys.create(newKey(Q));
  const first = await store.keys.list(P, { limit: 10 });
  t.deepEqual(first.items.map((k) => k.keyId), ids.slice(0, 10));
  t.true(first.truncated);
  t.is(first.total, 25);
  t.regex(first.nextMarker!, /^\d+$/);
  // Between pages: delete a key already seen and one not yet seen, create two new ones.
  await store.keys.destroy(P, ids[3]!);
  await store.keys.destroy(P, ids[15]!);
  const late = [(await store.keys.create(newKey(P))).keyId, (await store.keys.create(newKey(P))).keyId];
  const seen = [...first.items.map((k) => k.keyId)];
  let marker = first.nextMarker;
  let pages = 1;
  while (marker !== null) {
    const page = await store.keys.list(P, { limit: 10, marker });
    seen.push(...page.items.map((k) => k.keyId));
    t.is(page.total, 25);
    marker = page.nextMarker;
    t.is(page.truncated, marker !== null);
    pages++;
  }
  t.is(pages, 3);
  const expected = [...ids.filter((id) => id !== ids[15]), ...late];
  t.deepEqual(seen, expected, "every surviving key once, in creation order, new ones at the end");
  const disabled = await store.keys.list(P, { limit: 3, state: 3 as KeyState });
  t.is(disabled.total, 4, "ids[15] was deleted");
  t.deepEqual(disabled.items.map((k) => k.keyId), [ids[0], ids[5], ids[10]]);
  const rest = await store.keys.list(P, { limit: 3, state: 3, marker: disabled.nextMarker! });
  t.deepEqual(rest.items.map((k) => k.keyId), [ids[20]]);
  t.false(rest.truncated);
  t.is(rest.nextMarker, null);
  for (const limit of [0, -1, 1001, 1.5, Number.NaN]) await rejectsKms(t, store.keys.list(P, { limit }), "KMS.1601", `limit ${limit}`);
  for (const marker of ["x", "-1", "1e3", "01", " 1"]) await rejectsKms(t, store.keys.list(P, { limit: 1, marker }), "KMS.1602", `marker ${marker}`);
});

both("quotas: custom-key count excludes default keys; the limit holds under concurrent creates; default keys are exempt", async (t, writer) => {
  const store = await openStore(t, { writer });
  await store.keys.create(newKey(P, { alias: "obs/default", defaultKey: true }));
  const results = await Promise.allSettled(Array.from({ length: 12 }, () => store.keys.create(newKey(P), { maxCustomKeys: 5 })));
  t.is(results.filter((r) => r.status === "fulfilled").length, 5);
  for (const r of results) if (r.status === "rejected") t.is((r.reason as KmsError).code, "KMS.1105");
  t.is(await store.keys.count(P, { customOnly: true }), 5);
  t.is(await store.keys.count(P), 6);
  t.is(await store.keys.count(Q), 0);
  const evs = await store.keys.create(newKey(P, { alias: "evs/default", defaultKey: true }), { maxCustomKeys: 5 });
  t.true(evs.defaultKey, "a default key is never refused by the custom-key quota");
  t.is(await store.keys.count(P, { customOnly: true }), 5);
});

both("aliases: unique per project on create and update; 'return' gives concurrent first uses of a default key one key", async (t, writer) => {
  const store = await openStore(t, { writer });
  const a = await store.keys.create(newKey(P, { alias: "app/data" }));
  const b = await store.keys.create(newKey(P, { alias: "app/other" }));
  await rejectsKms(t, store.keys.create(newKey(P, { alias: "app/data" })), "KMS.1104");
  await rejectsKms(t, store.keys.update(P, b.keyId, { alias: "app/data" }), "KMS.1104");
  t.is((await store.keys.update(P, a.keyId, { alias: "app/data" })).alias, "app/data", "keeping one's own alias is no conflict");
  t.is((await store.keys.update(P, b.keyId, { alias: "app/renamed" })).alias, "app/renamed");
  await store.keys.create(newKey(P, { alias: "app/other" }));
  const before = (await store.audit.head()).seq;
  const firstUses = await Promise.all(Array.from({ length: 8 }, () =>
    store.keys.create(newKey(P, { alias: "rds/default", defaultKey: true }), { existingAlias: "return", audit: event("createKey", P, null) })));
  t.is(new Set(firstUses.map((k) => k.keyId)).size, 1);
  t.is((await store.keys.list(P, { limit: 100 })).items.filter((k) => k.alias === "rds/default").length, 1);
  t.is((await store.audit.head()).seq, before + 1, "only the creation is audited");
});

both("tags: at most 10 per key (replacing a value is no new tag), listed per key and per project", async (t, writer) => {
  const store = await openStore(t, { writer });
  const key = await store.keys.create(newKey(P));
  const other = await store.keys.create(newKey(P));
  const ten = Array.from({ length: 10 }, (_, i) => ({ key: `t${i}`, value: `v${i}` }));
  t.is((await store.tags.put(P, key.keyId, ten)).length, 10);
  await rejectsKms(t, store.tags.put(P, key.keyId, [{ key: "t10", value: "x" }]), "KMS.0409");
  t.is(await store.tags.count(P, key.keyId), 10, "the refused write left nothing behind");
  const replaced = await store.tags.put(P, key.keyId, [{ key: "t0", value: "new" }]);
  t.deepEqual(replaced.find((tag) => tag.key === "t0"), { projectId: P, keyId: key.keyId, key: "t0", value: "new" });
  await rejectsKms(t, store.tags.put(P, other.keyId, Array.from({ length: 4 }, (_, i) => ({ key: `x${i}`, value: "" }))
    , { maxTagsPerKey: 3 }), "KMS.0409");
  t.is(await store.tags.count(P, other.keyId), 0, "all or nothing");
  await store.tags.put(P, other.keyId, [{ key: "t1", value: "v1" }, { key: "t1", value: "v1" }, { key: "env", value: "prod" }]);
  t.deepEqual(await store.tags.listProject(P), [
    { key: "env", values: ["prod"] },
    { key: "t0", values: ["new"] },
    ...Array.from({ length: 9 }, (_, i) => ({ key: `t${i + 1}`, values: [`v${i + 1}`] })),
  ]);
  t.is(await store.tags.delete(P, key.keyId, ["t0", "t1", "nope"]), 2);
  t.is(await store.tags.count(P, key.keyId), 8);
  const concurrent = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => store.tags.put(P, key.keyId, [{ key: `c${i}`, value: "" }])));
  t.is(concurrent.filter((r) => r.status === "fulfilled").length, 2, "the per-key limit holds under concurrent writes");
  t.is(await store.tags.count(P, key.keyId), 10);
});

both("grants: create, read, page, retirable, by grantee, limit per key, delete", async (t, writer) => {
  const store = await openStore(t, { writer });
  const key = await store.keys.create(newKey(P));
  const other = await store.keys.create(newKey(P));
  const grants = [];
  for (let i = 0; i < 5; i++) {
    grants.push(await store.grants.create({
      projectId: P, keyId: key.keyId, name: `g${i}`, granteePrincipal: i < 3 ? "alice" : "bob", granteePrincipalType: "user",
      operations: ["encrypt-data", "decrypt-data"], retiringPrincipal: i % 2 === 0 ? "carol" : null, creator: "admin",
    }, { maxGrantsPerKey: 5 }));
  }
  t.regex(grants[0]!.grantId, /^[0-9a-f]{64}$/);
  t.deepEqual(await store.grants.get(P, key.keyId, grants[1]!.grantId), grants[1]);
  t.is(await store.grants.get(P, other.keyId, grants[1]!.grantId), undefined, "a grant is found through its own key only");
  await rejectsKms(t, store.grants.create({ projectId: P, keyId: key.keyId, granteePrincipal: "x", granteePrincipalType: "domain", operations: ["describe-key"] }, { maxGrantsPerKey: 5 }), "KMS.2404");
  t.is(await store.grants.count(P, key.keyId), 5);
  const page1 = await store.grants.list(P, key.keyId, { limit: 2 });
  const page2 = await store.grants.list(P, key.keyId, { limit: 2, marker: page1.nextMarker! });
  const page3 = await store.grants.list(P, key.keyId, { limit: 2, marker: page2.nextMarker! });
  t.deepEqual([...page1.items, ...page2.items, ...page3.items].map((g) => g.name), ["g0", "g1", "g2", "g3", "g4"]);
  t.is(page3.nextMarker, null);
  t.is(page1.total, 5);
  const retirable = await store.grants.listRetirable(P, "carol", { limit: 10 });
  t.deepEqual(retirable.items.map((g) => g.name), ["g0", "g2", "g4"]);
  t.deepEqual((await store.grants.findForGrantee(P, key.keyId, "bob")).map((g) => g.name), ["g3", "g4"]);
  await rejectsKms(t, store.grants.delete(P, other.keyId, grants[0]!.grantId), "KMS.2502", "a grant of another key of the project");
  t.is(await store.grants.keyIdOf(P, grants[0]!.grantId), key.keyId);
  t.is(await store.grants.keyIdOf(Q, grants[0]!.grantId), undefined, "another project's grant is no grant");
  const theirs = await store.keys.create(newKey(Q));
  await rejectsKms(t, store.grants.delete(Q, theirs.keyId, grants[0]!.grantId), "KMS.2501", "another project's grant");
  t.deepEqual(await store.grants.delete(P, key.keyId, grants[0]!.grantId), grants[0]);
  await rejectsKms(t, store.grants.delete(P, key.keyId, grants[0]!.grantId), "KMS.2501");
  t.is(await store.grants.count(P, key.keyId), 4);
  t.is((await store.grants.create({ projectId: P, keyId: key.keyId, granteePrincipal: "x", granteePrincipalType: "domain", operations: ["describe-key"] })).name, null);
});

both("guards: a refused state change changes nothing and is audited as a failure with the guard's code", async (t, writer) => {
  const store = await openStore(t, { writer });
  const key = await store.keys.create(newKey(P, { state: 3 }));
  const def = await store.keys.create(newKey(P, { alias: "obs/default", defaultKey: true }));
  const disableGuard = { states: { 3: "KMS.1301", 4: "KMS.0210" } as const, defaultKey: "KMS.0211" as const };
  await rejectsKms(t, store.keys.update(P, key.keyId, { state: 3 }, { guard: disableGuard, audit: event("disableKey", P, key.keyId) }), "KMS.1301");
  await rejectsKms(t, store.keys.update(P, def.keyId, { state: 3 }, { guard: disableGuard, audit: event("disableKey", P, def.keyId) }), "KMS.0211");
  t.is((await store.keys.get(P, key.keyId))?.revision, 1);
  t.is((await store.keys.get(P, def.keyId))?.state, 2);
  const enabled = await store.keys.update(P, key.keyId, { state: 2 }, { guard: { states: { 2: "KMS.1201" } }, audit: event("enableKey", P, key.keyId) });
  t.is(enabled.state, 2);
  await rejectsKms(t, store.keys.destroy(P, key.keyId, { guard: { states: { 1: "KMS.1501", 2: "KMS.1501", 3: "KMS.1501", 5: "KMS.1501" } } }), "KMS.1501");
  await rejectsKms(t, store.tags.put(P, key.keyId, [{ key: "a", value: "b" }], { guard: { states: { 2: "KMS.0209" } } }), "KMS.0209");
  const { records } = await store.audit.query({ projectId: P });
  t.deepEqual(records.map((r) => [r.action, r.keyId, r.outcome, r.errorCode]), [
    ["disableKey", key.keyId, "failure", "KMS.1301"],
    ["disableKey", def.keyId, "failure", "KMS.0211"],
    ["enableKey", key.keyId, "success", null],
  ]);
  await t.throwsAsync(store.keys.update(P, key.keyId, { state: 3 }, { guard: { states: { 2: "KMS.9999" as "KMS.0101" } } }), { instanceOf: TypeError });
  t.is((await store.keys.get(P, key.keyId))?.state, 2, "an unknown guard code fails the write, not the guard");
});

both("atomic audit: the record commits with the change; a failed change leaves only its failure record", async (t, writer) => {
  const store = await openStore(t, { writer });
  const key = await store.keys.create(newKey(P, { alias: "x" }), { version: material("1"), audit: event("createKey", P, null, { requestId: "r-create" }) });
  await rejectsKms(t, store.keys.create(newKey(P, { alias: "x" }), { audit: event("createKey", P, null, { requestId: "r-dup" }) }), "KMS.1104");
  await store.grants.create({ projectId: P, keyId: key.keyId, granteePrincipal: "g", granteePrincipalType: "user", operations: ["encrypt-data"] },
    { audit: event("createGrant", P, key.keyId, { requestId: "r-grant" }) });
  await rejectsKms(t, store.grants.create({ projectId: P, keyId: key.keyId, granteePrincipal: "g", granteePrincipalType: "user", operations: ["encrypt-data"] },
    { maxGrantsPerKey: 1, audit: event("createGrant", P, key.keyId, { requestId: "r-grant-2" }) }), "KMS.2404");
  await rejectsKms(t, store.keys.update(P, randomUUID(), { state: 3 }, { audit: event("disableKey", P, "no-such-key", { requestId: "r-missing" }) }), "KMS.0207");
  const { records } = await store.audit.query({});
  t.deepEqual(records.map((r) => [r.requestId, r.outcome, r.errorCode]), [
    ["r-create", "success", null],
    ["r-dup", "failure", "KMS.1104"],
    ["r-grant", "success", null],
    ["r-grant-2", "failure", "KMS.2404"],
    ["r-missing", "failure", "KMS.0207"],
  ]);
  t.is(await store.grants.count(P, key.keyId), 1);
  t.is(await store.keys.count(P), 1);
  // An audit record that cannot be encoded refuses the write before anything happens.
  await t.throwsAsync(store.keys.update(P, key.keyId, { state: 3 }, { audit: event("bad action!", P, key.keyId) }), { instanceOf: TypeError });
  t.is((await store.keys.get(P, key.keyId))?.state, 2);
  t.true((await store.audit.verify()).ok);
});

both("destroy dueBy: a key whose deletion date is later than dueBy (or that has none) stays, KMS.1501", async (t, writer) => {
  const store = await openStore(t, { writer });
  const key = await store.keys.create(newKey(P));
  await rejectsKms(t, store.keys.destroy(P, key.keyId, { dueBy: 1_000 }), "KMS.1501", "no deletion date");
  await store.keys.update(P, key.keyId, { state: 4, deletionDate: 2_000 });
  await rejectsKms(t, store.keys.destroy(P, key.keyId, { dueBy: 1_999 }), "KMS.1501", "not due yet");
  t.is((await store.keys.get(P, key.keyId))?.deletionDate, 2_000);
  t.is((await store.keys.destroy(P, key.keyId, { dueBy: 2_000 })).keyId, key.keyId, "due at its date");
  t.is(await store.keys.get(P, key.keyId), undefined);
});

both("destroy: versions, tags, grants and counters go with the key, and the material is gone from the files", async (t, writer) => {
  const dir = tempDir(t);
  const store = await openStore(t, { writer, directory: dir });
  const marker = `MATERIAL-${randomBytes(8).toString("hex")}`;
  const key = await store.keys.create(newKey(P), { version: { material: Buffer.from(`${marker}-v1`) } });
  await store.keys.addVersion(P, key.keyId, { material: Buffer.from(`${marker}-v2`) });
  await store.tags.put(P, key.keyId, [{ key: "a", value: "b" }]);
  await store.grants.create({ projectId: P, keyId: key.keyId, granteePrincipal: "g", granteePrincipalType: "user", operations: ["encrypt-data"] });
  await store.audit.append({ ...event("encryptData", P, key.keyId), outcome: "success" });
  await store.usage.flush();
  const db = rawDb(dir);
  t.teardown(() => db.close());
  const seq = (db.prepare("SELECT seq FROM keys WHERE key_id = ?").pluck().get(key.keyId) as number);
  t.is((await store.keys.destroy(P, key.keyId)).keyId, key.keyId);
  t.is(await store.keys.get(P, key.keyId), undefined);
  t.deepEqual(await store.keys.listVersions(P, key.keyId), []);
  for (const table of ["key_versions", "tags", "grants", "key_usage"]) {
    t.is(db.prepare(`SELECT count(*) FROM ${table} WHERE key_seq = ?`).pluck().get(seq), 0, table);
  }
  db.close();
  await store.close();
  for (const file of [DATABASE_FILE, `${DATABASE_FILE}-wal`]) {
    let bytes: Buffer;
    try {
      bytes = readFileSync(join(dir, file));
    } catch {
      continue;
    }
    t.false(bytes.includes(marker), `${file} no longer holds the wrapped material`);
  }
});

both("due for deletion: keys in state 4 whose date has come, soonest first, across projects", async (t, writer) => {
  const store = await openStore(t, { writer });
  const a = await store.keys.create(newKey(P));
  const b = await store.keys.create(newKey(Q));
  const c = await store.keys.create(newKey(P));
  await store.keys.update(P, a.keyId, { state: 4, deletionDate: 3000 });
  await store.keys.update(Q, b.keyId, { state: 4, deletionDate: 1000 });
  await store.keys.update(P, c.keyId, { state: 4, deletionDate: 9000 });
  t.deepEqual(await store.keys.listDueForDeletion(5000, 10), [
    { projectId: Q, keyId: b.keyId, deletionDate: 1000 },
    { projectId: P, keyId: a.keyId, deletionDate: 3000 },
  ]);
  await store.keys.update(P, a.keyId, { state: 3, deletionDate: null });
  t.deepEqual((await store.keys.listDueForDeletion(10_000, 1)).map((k) => k.keyId), [b.keyId]);
});

both("due for rotation: enabled custom keys with rotation on whose interval has passed, most overdue first, by an index", async (t, writer) => {
  const dir = tempDir(t);
  const store = await openStore(t, { writer, directory: dir });
  const DAY = 86_400_000;
  const make = (projectId: string, createdAt: number, overrides: Parameters<typeof newKey>[1] = {}) =>
    store.keys.create(newKey(projectId, { createdAt, rotationEnabled: true, rotationIntervalDays: 30, ...overrides }));
  const old = await make(P, 0);
  const older = await make(Q, -10 * DAY);
  const fresh = await make(P, 20 * DAY);
  const off = await make(P, -50 * DAY, { rotationEnabled: false });
  const dflt = await make(P, -50 * DAY, { defaultKey: true, alias: "obs/default" });
  const disabled = await make(Q, -50 * DAY, { state: 3 });
  const weekly = await make(Q, 0, { rotationIntervalDays: 7 });
  t.truthy(off && dflt && disabled);
  const due = async (now: number, limit = 10) => (await store.keys.listDueForRotation(now, limit)).map((k) => k.keyId);
  t.deepEqual(await due(31 * DAY), [weekly.keyId, older.keyId, old.keyId]);
  t.deepEqual(await due(31 * DAY, 2), [weekly.keyId, older.keyId]);
  t.deepEqual(await due(10 * DAY), [weekly.keyId]);
  t.deepEqual(await due(51 * DAY), [weekly.keyId, older.keyId, old.keyId, fresh.keyId]);
  await store.keys.update(Q, weekly.keyId, { rotationEnabled: false });
  t.deepEqual(await due(31 * DAY), [older.keyId, old.keyId]);
  // Turned on at day 40, 90 days after its creation: due one interval after that, not at once.
  t.is((await store.keys.update(P, off.keyId, { rotationEnabled: true, rotationEnabledAt: 40 * DAY })).rotationEnabledAt, 40 * DAY);
  t.false((await due(69 * DAY, 100)).includes(off.keyId));
  t.is((await store.keys.update(P, off.keyId, { rotationEnabled: true, rotationEnabledAt: 60 * DAY })).rotationEnabledAt, 40 * DAY, "enabling again keeps the date");
  t.true((await due(70 * DAY, 100)).includes(off.keyId));
  t.is((await store.keys.update(P, off.keyId, { rotationEnabled: false })).rotationEnabledAt, null);
  t.is(old.rotationEnabledAt, 0, "a key created with rotation on counts from its creation");
  const db = rawDb(dir);
  t.teardown(() => db.close());
  const plan = db.prepare(`EXPLAIN QUERY PLAN SELECT project_id, key_id FROM keys
        WHERE state = 2 AND rotation_enabled = 1 AND default_key = 0
          AND (${ROTATION_DUE_AT}) <= ?
        ORDER BY (${ROTATION_DUE_AT}) LIMIT ?`).all(0, 10) as Array<{ detail: string }>;
  t.true(plan.some((row) => /keys_rotation_due/u.test(row.detail)), JSON.stringify(plan));
});

/** AES-256-GCM under a native key: `iv (12) || ciphertext || tag`. The backend's sealer will use a token key. */
function testSealer(id = "test-gcm:1"): SecretSealer {
  const key = generateKey(32);
  return {
    id,
    seal: (plaintext, aad) => {
      const iv = randomBytes(12);
      return Buffer.concat([iv, gcmSeal(key, plaintext, { iv, aad })]);
    },
    open: (sealed, aad) => gcmOpen(key, sealed.subarray(12), { iv: sealed.subarray(0, 12), aad }),
  };
}

both("principals, sealed credentials and roles", async (t, writer) => {
  const dir = tempDir(t);
  const store = await openStore(t, { writer, directory: dir });
  await store.projects.create({ projectId: P, domainId: "d1", name: "main" });
  await rejectsKms(t, store.projects.create({ projectId: P, domainId: "d1", name: "again" }), "KMS.0308");
  await store.projects.create({ projectId: Q, domainId: "d2", name: "other" });
  t.deepEqual((await store.projects.list("d1")).map((p) => p.projectId), [P]);
  t.is((await store.projects.get(Q))?.name, "other");

  const alice = await store.principals.create({ principalId: "alice", domainId: "d1", name: "Alice" });
  t.false(alice.disabled);
  await rejectsKms(t, store.principals.create({ principalId: "alice", domainId: "d1", name: "Alice" }), "KMS.0308");
  t.true((await store.principals.update("alice", { disabled: true })).disabled);
  t.is((await store.principals.get("alice"))?.name, "Alice");

  const sealer = testSealer();
  const sk = Buffer.from(`SK-${randomBytes(16).toString("hex")}`);
  const secret = await sealCredentialSecret(sealer, "AKALICE", "alice", sk);
  const credential = await store.principals.createCredential({ accessKey: "AKALICE", principalId: "alice", secret, description: "laptop" });
  t.is(credential.status, "active");
  await rejectsKms(t, store.principals.createCredential({ accessKey: "AKALICE", principalId: "alice", secret }), "KMS.0308");
  await rejectsKms(t, store.principals.createCredential({ accessKey: "AKX", principalId: "nobody", secret }), "KMS.0308");
  await t.throwsAsync(store.principals.createCredential({ accessKey: "AKY", principalId: "alice", secret: sk as never }), { instanceOf: TypeError });
  const read = await store.principals.getCredential("AKALICE");
  t.true(Buffer.isBuffer(read?.secret.blob));
  t.true((await openCredentialSecret(sealer, read!)).equals(sk), "the SK opens with its sealer");
  // A sealed SK moved to another credential does not open there (bound by the additional data).
  await t.throwsAsync(async () => sealer.open(read!.secret.blob, credentialAad("AKOTHER", "alice")));
  await t.throwsAsync(openCredentialSecret(testSealer("another:1"), read!), { message: /sealed by test-gcm:1/ });
  const files = [DATABASE_FILE, `${DATABASE_FILE}-wal`].map((file) => {
    try {
      return readFileSync(join(dir, file));
    } catch {
      return Buffer.alloc(0);
    }
  });
  t.true(files.some((bytes) => bytes.includes("AKALICE")), "the search finds what is stored in clear");
  t.false(files.some((bytes) => bytes.includes(sk)), "the SK is not in the database files in clear");
  t.is((await store.principals.updateCredential("AKALICE", { status: "inactive", expiresAt: 99 })).status, "inactive");
  t.deepEqual((await store.principals.listCredentials("alice")).map((c) => [c.accessKey, c.status, c.expiresAt]), [["AKALICE", "inactive", 99]]);
  t.true(await store.principals.deleteCredential("AKALICE"));
  t.false(await store.principals.deleteCredential("AKALICE"));

  const role = await store.principals.addRole("alice", P, "key_admin");
  t.deepEqual(await store.principals.addRole("alice", P, "key_admin"), role, "adding a held role is idempotent");
  await store.principals.addRole("alice", P, "auditor");
  await store.principals.addRole("alice", Q, "crypto_user");
  await rejectsKms(t, store.principals.addRole("nobody", P, "auditor"), "KMS.0308");
  t.deepEqual((await store.principals.listRoles("alice", P)).map((r) => r.role), ["auditor", "key_admin"]);
  t.deepEqual((await store.principals.listRoles("alice")).map((r) => `${r.projectId}:${r.role}`), [`${P}:auditor`, `${P}:key_admin`, `${Q}:crypto_user`]);
  t.true(await store.principals.removeRole("alice", P, "auditor"));
  t.false(await store.principals.removeRole("alice", P, "auditor"));
});

both("usage counters: successes per key and action from the audit log, kept across a reopen", async (t, writer) => {
  const dir = tempDir(t);
  let store = await openSqliteStore({ directory: dir, mac: MAC, writer, usageFlushMs: 60_000 });
  const key = await store.keys.create(newKey(P), { audit: event("createKey", P, null) });
  const appends = [];
  for (let i = 0; i < 30; i++) appends.push(store.audit.append({ ...event("encryptData", P, key.keyId, { time: 1000 + i }), outcome: "success" }));
  for (let i = 0; i < 5; i++) appends.push(store.audit.append({ ...event("decryptData", P, key.keyId, { time: 2000 + i }), outcome: "success" }));
  appends.push(store.audit.append({ ...event("decryptData", P, key.keyId), outcome: "failure", errorCode: "KMS.2201" }));
  appends.push(store.audit.append({ ...event("decryptData", P, key.keyId), outcome: "denied", errorCode: "KMS.0306" }));
  await Promise.all(appends);
  const expected = [
    { projectId: P, keyId: key.keyId, action: "decryptData", count: 5, lastUsedAt: 2004 },
    { projectId: P, keyId: key.keyId, action: "encryptData", count: 30, lastUsedAt: 1029 },
  ];
  t.deepEqual(await store.usage.get(P, key.keyId), expected, "before any write of the counters");
  await store.usage.flush();
  t.deepEqual(await store.usage.get(P, key.keyId), expected, "after");
  await store.audit.append({ ...event("encryptData", P, key.keyId, { time: 5000 }), outcome: "success" });
  await store.close();
  store = await openSqliteStore({ directory: dir, mac: MAC, writer });
  t.teardown(() => store.close());
  t.deepEqual(await store.usage.get(P, key.keyId), [expected[0], { ...expected[1]!, count: 31, lastUsedAt: 5000 }]);
  t.deepEqual(await store.usage.get(Q, key.keyId), []);
});

test("usage counters never count a usage write twice while its commit is being acknowledged", async (t) => {
  // The writer thread commits a usage write a moment before the store hears so; a read in that
  // moment sees the written rows and must not add the same counts from the write in flight.
  const store = await openStore(t, { writer: "worker", usageFlushMs: 60_000 });
  const key = await store.keys.create(newKey(P), { audit: event("createKey", P, null) });
  let total = 0;
  for (let round = 0; round < 40; round++) {
    const n = 1 + (round % 5);
    await Promise.all(Array.from({ length: n }, (_, i) => store.audit.append({ ...event("encryptData", P, key.keyId, { time: 1000 + i }), outcome: "success" })));
    total += n;
    let done = false;
    const flushed = store.usage.flush().then(() => (done = true));
    while (!done) {
      const count = (await store.usage.get(P, key.keyId)).find((r) => r.action === "encryptData")?.count;
      if (count !== total) t.fail(`round ${round}: read ${count} encryptData uses, expected ${total}`);
      await new Promise((resolve) => setImmediate(resolve));
    }
    await flushed;
  }
  t.is((await store.usage.get(P, key.keyId)).find((r) => r.action === "encryptData")?.count, total);
});

both("a closed store refuses reads and writes; a second open of the directory is refused while the first holds it", async (t, writer) => {
  const dir = tempDir(t);
  const store = await openSqliteStore({ directory: dir, mac: MAC, writer });
  const error = await t.throwsAsync(openSqliteStore({ directory: dir, mac: MAC, writer }));
  t.true(isStoreError(error, "ERR_KMS_STORE_LOCKED"), String(error));
  await store.close();
  await store.close();
  t.true(isStoreError(await t.throwsAsync(store.keys.create(newKey(P))), "ERR_KMS_STORE_CLOSED"));
  t.true(isStoreError(await t.throwsAsync(store.keys.get(P, "x")), "ERR_KMS_STORE_CLOSED"));
  t.true(isStoreError(await t.throwsAsync(store.flush()), "ERR_KMS_STORE_CLOSED"));
  const again = await openSqliteStore({ directory: dir, mac: MAC, writer });
  await again.close();
  t.pass();
});
