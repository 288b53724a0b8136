/**
 * A second process for the token-directory tests (not a test file itself):
 *
 *   node persistence-child.js hold <dir>    opens the directory, prints "ready", waits to be killed
 *   node persistence-child.js open <dir>    tries to open it, prints one JSON line: { ok } or the error
 *   node persistence-child.js churn <dir> <round>
 *       opens the directory and changes token objects in a loop until killed, printing a line
 *       before each call ("begin …") and one after it returned ("done …"), so the parent knows
 *       exactly which changes were acknowledged:
 *         begin create <id>            done create <handle> <id>
 *         begin generate <id>          done generate <handle> <id>
 *         begin set <handle> <label>   done set <handle> <label>
 *         begin destroy <handle>       done destroy <handle>
 *       Created keys are AES-256 with CKA_VALUE = SHA-256(id), CKA_ID = id, CKA_LABEL = id;
 *       "set" changes only CKA_LABEL.
 *
 * Lines are written with writeSync, so a line is out before the next call starts.
 */
import { randomInt } from "node:crypto";
import { writeSync } from "node:fs";
import { Emulator } from "../../emulator/emulator.js";
import { churnValue, FAST_KDF, findAll, handleNumber, P, SO_PIN, USER_PIN } from "./persistence-helpers.js";
import { toHandle } from "../../emulator/handles.js";

const [mode, dir, round] = process.argv.slice(2);
const say = (line: string): void => {
  writeSync(1, line + "\n");
};

function open(): Emulator {
  return new Emulator({ tokenDir: dir!, kdf: FAST_KDF, slots: [{ token: { label: "persist", soPin: SO_PIN, userPin: USER_PIN } }] });
}

if (mode === "hold") {
  const emulator = open();
  emulator.C_Initialize();
  say(`ready ${process.pid}`);
  setInterval(() => emulator.C_GetSlotList(), 1000);
} else if (mode === "open") {
  try {
    open().close();
    say(JSON.stringify({ ok: true }));
  } catch (error) {
    const e = error as Error & { code?: string; owner?: unknown };
    say(JSON.stringify({ ok: false, name: e.name, code: e.code, message: e.message, owner: e.owner }));
  }
} else if (mode === "churn") {
  process.removeAllListeners("warning"); // the takeover of a killed predecessor's lock is expected
  const emulator = open();
  emulator.C_Initialize();
  const session = emulator.C_OpenSession(emulator.C_GetSlotList()[0]!, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
  emulator.C_Login(session, P.CKU_USER, USER_PIN);
  const live = findAll(emulator, session).map(handleNumber);
  say("ready");
  for (let i = 0; i < 100_000; i++) {
    const id = `r${round}-${i}`;
    const choice = randomInt(100);
    if (live.length > 0 && (choice < 20 || live.length > 40)) {
      const handle = live.splice(randomInt(live.length), 1)[0]!;
      say(`begin destroy ${handle}`);
      emulator.C_DestroyObject(session, toHandle(handle));
      say(`done destroy ${handle}`);
    } else if (live.length > 0 && choice < 45) {
      const handle = live[randomInt(live.length)]!;
      say(`begin set ${handle} ${id}`);
      emulator.C_SetAttributeValue(session, toHandle(handle), [{ type: P.CKA_LABEL, value: id }]);
      say(`done set ${handle} ${id}`);
    } else if (choice < 75) {
      say(`begin create ${id}`);
      const handle = emulator.C_CreateObject(session, [
        { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_AES }, { type: P.CKA_TOKEN, value: true },
        { type: P.CKA_PRIVATE, value: true }, { type: P.CKA_EXTRACTABLE, value: true }, { type: P.CKA_VALUE, value: churnValue(id) },
        { type: P.CKA_ID, value: Buffer.from(id) }, { type: P.CKA_LABEL, value: id },
      ]);
      say(`done create ${handleNumber(handle)} ${id}`);
      live.push(handleNumber(handle));
    } else {
      say(`begin generate ${id}`);
      const handle = emulator.C_GenerateKey(session, { mechanism: P.CKM_AES_KEY_GEN }, [
        { type: P.CKA_TOKEN, value: true }, { type: P.CKA_VALUE_LEN, value: 32 }, { type: P.CKA_SENSITIVE, value: true },
        { type: P.CKA_ID, value: Buffer.from(id) }, { type: P.CKA_LABEL, value: id }, { type: P.CKA_ENCRYPT, value: true },
      ]);
      say(`done generate ${handleNumber(handle)} ${id}`);
      live.push(handleNumber(handle));
    }
  }
  emulator.close();
} else {
  say(`unknown mode ${mode}`);
  process.exitCode = 2;
}
