/**
 * A same-run peer for the Kms benchmark, run as a child process on the parent's cores: node:crypto
 * AES-256-GCM of 1 KiB, a fresh cipher per message, exactly as ../shared/reference/baselines.md §5
 * measured it on this VM (median 214 746 messages/s). Mostly JavaScript and Node's C++ bindings,
 * like a Kms request, where openssl speed's figure is mostly vector instructions: the two peers
 * together say whether the VM's speed on the day moved both kinds of work.
 *
 *   node dist/bench/peer-node-crypto.js     prints {"ops_per_s": N}
 */
import { createCipheriv, randomBytes } from "node:crypto";
import { measure } from "./harness.js";

const key = randomBytes(32);
const iv = Buffer.alloc(12);
const plaintext = randomBytes(1024);

const result = await measure({
  target: "node:crypto", op: "gcm-seal", bytes: 1024, batch: 1, opsPerIteration: 1,
  body: (n) => {
    for (let i = 0; i < n; i++) {
      iv.writeUInt32BE(i >>> 0, 8);
      const cipher = createCipheriv("aes-256-gcm", key, iv);
      cipher.update(plaintext);
      cipher.final();
      cipher.getAuthTag();
    }
  },
}, { runSeconds: 0.2, runs: 5 });
process.stdout.write(`${JSON.stringify({ ops_per_s: result.ops_per_s })}\n`);
