// Opening the store: from an empty directory, again after a close, across a new migration, after a
// migration that fails (rolled back whole), and the refusals — a newer schema, a foreign SQLite
// file, a directory another live process holds — plus the takeover of a dead process's lock.
import test from "ava";
import Database from "better-sqlite3";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { isStoreError } from "../../src/kms/store/errors.js";
import { LOCK_FILE } from "../../src/kms/store/lock.js";
import { APPLICATION_ID, migrate, MIGRATIONS, type Migration } from "../../src/kms/store/migrations.js";
import { DATABASE_FILE, openSqliteStore, verifyAuditDatabase } from "../../src/kms/store/sqlite.js";
import { MAC, newKey, tempDir, WRITERS } from "./store-helpers.js";

const P = "project-a";

for (const writer of WRITERS) {
  test(`an empty directory is created and migrated; a reopen finds the data and migrates nothing [${writer}]`, async (t) => {
    const dir = join(tempDir(t), "nested", "kms");
    const store = await openSqliteStore({ directory: dir, mac: MAC, writer });
    t.deepEqual(store.migration, { from: 0, to: MIGRATIONS.length, applied: MIGRATIONS.map(({ version, name }) => ({ version, name })) });
    t.is(statSync(dir).mode & 0o777, 0o700);
    t.true(existsSync(join(dir, LOCK_FILE)));
    const key = await store.keys.create(newKey(P), { version: { material: Buffer.from("m") } });
    const logId = store.audit.logId;
    await store.close();
    t.false(existsSync(join(dir, LOCK_FILE)), "close releases the lock");
    const db = new Database(join(dir, DATABASE_FILE), { readonly: true });
    t.is(db.pragma("application_id", { simple: true }), APPLICATION_ID);
    t.is(db.pragma("user_version", { simple: true }), MIGRATIONS.length);
    t.is(db.pragma("journal_mode", { simple: true }), "wal");
    db.close();
    const again = await openSqliteStore({ directory: dir, mac: MAC, writer });
    t.teardown(() => again.close());
    t.deepEqual(again.migration, { from: MIGRATIONS.length, to: MIGRATIONS.length, applied: [] });
    t.deepEqual(await again.keys.get(P, key.keyId), key);
    t.true(again.audit.logId.equals(logId), "the log keeps its identity");
  });
}

test("migration 5 records when rotation is turned on; keys turned on before it keep their schedule", async (t) => {
  const dir = tempDir(t);
  mkdirSync(dir, { recursive: true });
  const DAY = 86_400_000;
  const db = new Database(join(dir, DATABASE_FILE));
  migrate(db, MIGRATIONS.slice(0, 4));
  const insert = db.prepare(`INSERT INTO keys (project_id, key_id, domain_id, alias, description, key_spec, key_usage, origin, state, default_key,
    created_at, updated_at, deletion_date, rotation_enabled, rotation_interval_days, last_rotated_at, rotation_count, current_version, revision)
    VALUES (?, ?, 'd', ?, '', 'AES_256', 'ENCRYPT_DECRYPT', 'kms', 2, 0, 0, 0, NULL, ?, 30, NULL, 0, 1, 1)`);
  insert.run(P, "k-on", "on", 1);
  insert.run(P, "k-off", "off", 0);
  db.close();
  const store = await openSqliteStore({ directory: dir, mac: MAC, writer: "inline" });
  t.teardown(() => store.close());
  t.deepEqual(store.migration.applied, [{ version: 5, name: "time rotation was enabled" }]);
  t.like(await store.keys.get(P, "k-on"), { rotationEnabled: true, rotationEnabledAt: null });
  const due = async (now: number): Promise<string[]> => (await store.keys.listDueForRotation(now, 10)).map((k) => k.keyId);
  t.deepEqual(await due(30 * DAY - 1), []);
  t.deepEqual(await due(30 * DAY), ["k-on"], "no enable time recorded: due from creation, as before");
  await store.keys.update(P, "k-off", { rotationEnabled: true, rotationEnabledAt: 100 * DAY });
  t.deepEqual(await due(130 * DAY - 1), ["k-on"]);
  t.deepEqual(await due(130 * DAY), ["k-on", "k-off"]);
});

const V2: Migration = {
  version: MIGRATIONS.length + 1,
  name: "key labels",
  up: (db) => db.exec("ALTER TABLE keys ADD COLUMN label TEXT; CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL) STRICT;"),
};

test("a new migration upgrades an existing store in place and is recorded", async (t) => {
  const dir = tempDir(t);
  const store = await openSqliteStore({ directory: dir, mac: MAC, writer: "inline" });
  const key = await store.keys.create(newKey(P));
  await store.close();
  const upgraded = await openSqliteStore({ directory: dir, mac: MAC, writer: "inline", migrations: [...MIGRATIONS, V2] });
  t.teardown(() => upgraded.close());
  const last = MIGRATIONS.length;
  t.deepEqual(upgraded.migration, { from: last, to: last + 1, applied: [{ version: last + 1, name: "key labels" }] });
  t.deepEqual(await upgraded.keys.get(P, key.keyId), key, "the data survives");
  const db = new Database(join(dir, DATABASE_FILE), { readonly: true });
  t.teardown(() => db.close());
  t.deepEqual((db.prepare("SELECT version, name FROM schema_migrations ORDER BY version").all() as unknown[]), [
    ...MIGRATIONS.map(({ version, name }) => ({ version, name })), { version: last + 1, name: "key labels" },
  ]);
});

test("a migration that fails is rolled back whole; the store stays at the previous version and opens", async (t) => {
  const dir = tempDir(t);
  await (await openSqliteStore({ directory: dir, mac: MAC, writer: "inline" })).close();
  const broken: Migration = { version: MIGRATIONS.length + 1, name: "broken", up: (db) => db.exec("CREATE TABLE half (x INTEGER); SELECT no_such_function();") };
  const error = await t.throwsAsync(openSqliteStore({ directory: dir, mac: MAC, writer: "inline", migrations: [...MIGRATIONS, broken] }));
  t.true(isStoreError(error, "ERR_KMS_STORE_MIGRATION"), String(error));
  const db = new Database(join(dir, DATABASE_FILE), { readonly: true });
  t.is(db.pragma("user_version", { simple: true }), MIGRATIONS.length);
  t.is(db.prepare("SELECT count(*) FROM sqlite_schema WHERE name = 'half'").pluck().get(), 0);
  db.close();
  const store = await openSqliteStore({ directory: dir, mac: MAC, writer: "inline" });
  await store.close();
  t.pass("the lock was released and the store opens");
});

test("a database of a newer hsmkit is refused, never downgraded", async (t) => {
  const dir = tempDir(t);
  await (await openSqliteStore({ directory: dir, mac: MAC, writer: "inline" })).close();
  const db = new Database(join(dir, DATABASE_FILE));
  db.pragma("user_version = 99");
  db.close();
  for (const writer of WRITERS) {
    const error = await t.throwsAsync(openSqliteStore({ directory: dir, mac: MAC, writer }));
    t.true(isStoreError(error, "ERR_KMS_STORE_SCHEMA_TOO_NEW"), `${writer}: ${String(error)}`);
  }
  t.false(existsSync(join(dir, LOCK_FILE)));
});

test("a SQLite file that is not an hsmkit store is refused", async (t) => {
  const dir = tempDir(t);
  const db = new Database(join(dir, DATABASE_FILE));
  db.exec("CREATE TABLE precious (data TEXT); INSERT INTO precious VALUES ('keep me')");
  db.close();
  const error = await t.throwsAsync(openSqliteStore({ directory: dir, mac: MAC, writer: "inline" }));
  t.true(isStoreError(error, "ERR_KMS_STORE_FOREIGN"), String(error));
  const after = new Database(join(dir, DATABASE_FILE), { readonly: true });
  t.is(after.prepare("SELECT data FROM precious").pluck().get(), "keep me");
  after.close();
});

test("a foreign SQLite file is refused untouched: its journal mode stays, no write-ahead log is made", async (t) => {
  const dir = tempDir(t);
  const path = join(dir, DATABASE_FILE);
  const db = new Database(path);
  db.exec("CREATE TABLE precious (data TEXT); INSERT INTO precious VALUES ('keep me')");
  db.close();
  const before = readFileSync(path);
  for (const writer of WRITERS) {
    const error = await t.throwsAsync(openSqliteStore({ directory: dir, mac: MAC, writer }));
    t.true(isStoreError(error, "ERR_KMS_STORE_FOREIGN"), `${writer}: ${String(error)}`);
  }
  const error = await t.throwsAsync(verifyAuditDatabase(path, MAC));
  t.true(isStoreError(error, "ERR_KMS_STORE_FOREIGN"), `verifyAuditDatabase: ${String(error)}`);
  t.true(readFileSync(path).equals(before), "the file is byte for byte as it was (a switch to WAL rewrites its header)");
  t.false(existsSync(`${path}-wal`));
  const after = new Database(path, { readonly: true });
  t.is(after.pragma("journal_mode", { simple: true }), "delete");
  after.close();
});

test("a file that is not a SQLite database is refused as not a store, untouched", async (t) => {
  const dir = tempDir(t);
  const path = join(dir, DATABASE_FILE);
  const text = Buffer.from("these are someone's notes, not a database\n".repeat(200));
  writeFileSync(path, text);
  for (const writer of WRITERS) {
    const error = await t.throwsAsync(openSqliteStore({ directory: dir, mac: MAC, writer }));
    t.true(isStoreError(error, "ERR_KMS_STORE_FOREIGN"), `${writer}: ${String(error)}`);
  }
  const error = await t.throwsAsync(verifyAuditDatabase(path, MAC));
  t.true(isStoreError(error, "ERR_KMS_STORE_FOREIGN"), `verifyAuditDatabase: ${String(error)}`);
  t.true(readFileSync(path).equals(text));
  t.false(existsSync(join(dir, LOCK_FILE)));
});

test("a damaged database file (truncated) is refused as damaged, with the lock released", async (t) => {
  const dir = tempDir(t);
  const store = await openSqliteStore({ directory: dir, mac: MAC });
  for (let i = 0; i < 200; i++) await store.keys.create(newKey("project-a"));
  await store.close();
  const path = join(dir, DATABASE_FILE);
  truncateSync(path, Math.floor(statSync(path).size / 2));
  for (const writer of WRITERS) {
    const error = await t.throwsAsync(openSqliteStore({ directory: dir, mac: MAC, writer }));
    t.true(isStoreError(error, "ERR_KMS_STORE_CORRUPT"), `${writer}: ${String(error)}`);
    t.regex((error as Error).message, /restore it from a backup/u);
    t.false(existsSync(join(dir, LOCK_FILE)), `${writer}: lock released`);
  }
});

test("the migration list must be numbered 1, 2, … in order", (t) => {
  const db = new Database(":memory:");
  t.throws(() => migrate(db, [{ ...V2, version: 2 }]), { message: /out of order/ });
  t.throws(() => migrate(db, [...MIGRATIONS, { ...V2, version: MIGRATIONS.length + 2 }]), { message: /out of order/ });
  db.close();
});

test("a lock held by a live process is refused; a dead process's lock is taken over with a warning", async (t) => {
  const dir = tempDir(t);
  mkdirSync(dir, { recursive: true });
  const lock = (pid: number): string => JSON.stringify({ pid, hostname: hostname(), processStart: null, since: "then", command: "test", nonce: `n${pid}` });
  // pid 1 is alive (and its start time unknown to the lock): in use.
  writeFileSync(join(dir, LOCK_FILE), lock(1));
  const error = await t.throwsAsync(openSqliteStore({ directory: dir, mac: MAC, writer: "inline" }));
  t.true(isStoreError(error, "ERR_KMS_STORE_LOCKED"), String(error));
  t.regex(String(error), /in use by process 1/);
  // A process that has exited.
  const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  writeFileSync(join(dir, LOCK_FILE), lock(Number(dead.stdout)));
  const warnings: string[] = [];
  const store = await openSqliteStore({ directory: dir, mac: MAC, writer: "inline", warn: (message) => warnings.push(message) });
  await store.close();
  t.is(warnings.length, 1);
  t.regex(warnings[0]!, /took over the lock/);
});
