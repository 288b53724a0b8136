/**
 * The Kms process of the durability test (not a test file itself):
 *
 *   node kms-durability-child.js '<json ChildArgs>'
 *
 * Opens the Kms on the token and store the parent prepared (createKeys false: the token's keys
 * exist), prints "ready", then runs several concurrent streams of create-key and encrypt-data until
 * it is killed, printing one line after each request's promise resolved — that is, after the
 * request was acknowledged:
 *   K <keyId>                         a key created
 *   C <keyId> <blob hex> <text hex>   a ciphertext returned (its plaintext alongside)
 * Lines are written with writeSync, so a line is out before the next request starts.
 */
import { randomBytes } from "node:crypto";
import { writeSync } from "node:fs";
import { Emulator } from "../../emulator/index.js";
import { Kms } from "../../src/kms/kms.js";
import { FAST_KDF, TOKEN_LABEL, USER_PIN, type ChildToken } from "./backend-fixtures.js";

export interface DurabilityChildArgs {
  token: ChildToken;
  dir: string;
  round: number;
  projectId: string;
  principalId: string;
}

const args = JSON.parse(process.argv[2]!) as DurabilityChildArgs;
const say = (line: string): void => {
  writeSync(1, line + "\n");
};

let module: Emulator | string;
if (args.token.kind === "softhsm") {
  process.env.SOFTHSM2_CONF = args.token.conf;
  module = args.token.library;
} else {
  module = new Emulator({ tokenDir: args.token.tokenDir, kdf: FAST_KDF });
}
const kms = await Kms.open({
  directory: args.dir,
  token: { module, tokenLabel: TOKEN_LABEL, pin: USER_PIN, createKeys: false },
  store: { warn: () => {} },
  limits: { customKeysPerProject: 1_000_000 },
  warn: () => {},
});
say("ready");

const keys: string[] = [];
let request = 0;
const ctx = () => ({ projectId: args.projectId, principalId: args.principalId, requestId: `r${args.round}-${++request}`, source: "child" });

async function stream(id: number): Promise<never> {
  for (let i = 0; ; i++) {
    if (keys.length === 0 || i % 4 === 0) {
      const key = await kms.createKey(ctx(), { keyAlias: `k-${args.round}-${id}-${i}` });
      keys.push(key.keyId);
      say(`K ${key.keyId}`);
    } else {
      const keyId = keys[(i * 7 + id) % keys.length]!;
      const text = randomBytes(1 + ((i * 31 + id) % 200));
      const sealed = await kms.encryptData(ctx(), { keyId, plainText: text, encryptionContext: { round: String(args.round) } });
      say(`C ${keyId} ${sealed.cipherText.toString("hex")} ${text.toString("hex")}`);
    }
  }
}

await Promise.all(Array.from({ length: 6 }, (_, id) => stream(id)));
