/**
 * The writer process for the durability test (not a test file itself):
 *
 *   node store-durability-child.js <dir> <writer> <round>
 *
 * Opens the store, prints "ready", then keeps several streams of durable writes going until it is
 * killed, printing one line after each write's promise resolved — that is, after the write was
 * acknowledged as committed:
 *   K <keyId> <alias>      a key created (with its createKey audit record, atomically)
 *   S <keyId> 3            a key disabled (its only state change; with its disableKey record)
 *   A <seq> <requestId>    an audit record appended (encryptData on a created key)
 * Lines are written with writeSync, so a line is out before the next write starts.
 */
import { randomUUID } from "node:crypto";
import { writeSync } from "node:fs";
import { openSqliteStore } from "../../src/kms/store/sqlite.js";
import type { WriterMode } from "../../src/kms/store/writer.js";
import { MAC, newKey } from "./store-helpers.js";

const [dir, writer, round] = process.argv.slice(2) as [string, WriterMode, string];
const say = (line: string): void => {
  writeSync(1, line + "\n");
};
const P = "project-durable";

const store = await openSqliteStore({
  directory: dir, mac: MAC, writer, warn: () => {}, usageFlushMs: 25, checkpoints: { everyRecords: 37, everyMs: 0 },
});
say("ready");
const keys: string[] = [];
let request = 0;

async function stream(id: number): Promise<never> {
  for (let i = 0; ; i++) {
    const requestId = `r${round}-${id}-${++request}`;
    const base = { requestId, projectId: P, principalId: `user-${id}`, source: "child" };
    if (keys.length === 0 || i % 5 === 0) {
      const key = newKey(P, { keyId: randomUUID() });
      await store.keys.create(key, { version: { material: Buffer.from(`material-${key.keyId}`) }, audit: { ...base, action: "createKey", keyId: null } });
      keys.push(key.keyId);
      say(`K ${key.keyId} ${key.alias}`);
    } else if (i % 7 === 0) {
      const keyId = keys.shift()!;
      await store.keys.update(P, keyId, { state: 3 }, { guard: { states: { 3: "KMS.1301" } }, audit: { ...base, action: "disableKey", keyId } });
      say(`S ${keyId} 3`);
    } else {
      const keyId = keys[i % keys.length]!;
      const record = await store.audit.append({ ...base, action: "encryptData", keyId, outcome: "success" });
      say(`A ${record.seq} ${requestId}`);
    }
  }
}

await Promise.all(Array.from({ length: 8 }, (_, id) => stream(id)));
