/**
 * A separate process for the restart test: opens a backend on a token the parent prepared (with
 * createKeys false: the keys must be found, not made), opens what the parent sealed, checks the
 * parent's MAC, and prints what it found as one JSON line.
 *
 *   node backend-child.js '<json ChildRequest>'
 */
import { Emulator } from "../../emulator/index.js";
import { openBackend } from "../../src/kms/backend/graphene.js";
import { FAST_KDF, TOKEN_LABEL, USER_PIN, type ChildToken } from "./backend-fixtures.js";

export interface ChildRequest {
  token: ChildToken;
  versionId: string;
  wrapped: string;
  iv: string;
  aad: string;
  sealed: string;
  macData: string;
  mac: string;
}

export interface ChildReply {
  rootCreated: boolean;
  rootId: string;
  macCreated: boolean;
  plaintext: string;
  macValid: boolean;
  mac: string;
}

const request = JSON.parse(process.argv[2]!) as ChildRequest;
const hex = (text: string): Buffer => Buffer.from(text, "hex");
let emulator: Emulator | undefined;
if (request.token.kind === "softhsm") process.env.SOFTHSM2_CONF = request.token.conf;
else emulator = new Emulator({ tokenDir: request.token.tokenDir, kdf: FAST_KDF });
const backend = openBackend({
  module: emulator ?? (request.token as { library: string }).library, tokenLabel: TOKEN_LABEL, pin: USER_PIN, createKeys: false,
});
try {
  const info = backend.info();
  const version = { id: request.versionId, wrapped: hex(request.wrapped) };
  const reply: ChildReply = {
    rootCreated: info.rootKey.created,
    rootId: info.rootKey.id,
    macCreated: info.macKey.created,
    plaintext: backend.decrypt(version, hex(request.iv), hex(request.aad), hex(request.sealed)).toString("hex"),
    macValid: backend.verifyMac(hex(request.macData), hex(request.mac)),
    mac: backend.mac(hex(request.macData)).toString("hex"),
  };
  process.stdout.write(JSON.stringify(reply) + "\n");
} finally {
  backend.close();
  emulator?.close();
}
