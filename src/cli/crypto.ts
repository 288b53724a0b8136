/**
 * `hsmkit encrypt | decrypt | datakey | random`: the KMS's cryptographic operations from the shell.
 *
 * - encrypt: Huawei encrypt-data; the plaintext (1-4096 bytes of UTF-8 text, as Huawei's plain_text
 *   is a JSON string) from --text, --in FILE or stdin; prints the ciphertext blob in base64.
 * - decrypt: decrypt-data; prints the plaintext exactly as it was encrypted (no newline added
 *   unless stdout is a terminal).
 * - datakey: create-datakey — prints a fresh data key and the same key sealed under the CMK (hex),
 *   or only the sealed one with --no-plaintext (create-datakey-without-plaintext).
 * - random: gen-random — random bytes from the HSM.
 *
 * Output goes to stdout unless --out names a file; plaintext files are created mode 0600.
 */
import { readFileSync, realpathSync, writeFileSync } from "node:fs";
import { Command, InvalidArgumentError, Option } from "commander";
import { MAX_BLOB_BYTES, MAX_PLAINTEXT_BYTES } from "../kms/envelope/blob.js";
import { writeFileAtomic } from "../util/atomic-file.js";
import { addClientOptions, withClient, type ClientFlags } from "./kms-client.js";
import { action, collect, CommandLineError, fields, integerIn, keyValues, print, UsageError } from "./output.js";

/** What the ciphertext is bound to: repeated at decryption. */
interface BindingFlags {
  context?: string[];
  aad?: string;
}

function bindingBody(flags: BindingFlags): Record<string, unknown> {
  const context = keyValues(flags.context, "--context");
  return {
    ...(context !== undefined ? { encryption_context: context } : {}),
    ...(flags.aad !== undefined ? { additional_authenticated_data: flags.aad } : {}),
  };
}

function addBindingOptions(command: Command, verb: string): Command {
  return command
    .option("--context <key=value>", `encryption context pair (repeatable); ${verb}`, collect)
    .option("--aad <text>", `additional authenticated data (≤ 128 bytes); ${verb}`);
}

async function readStdin(what: string): Promise<Buffer> {
  if (process.stdin.isTTY) throw new CommandLineError(`no ${what}: give it as an option or pipe it on stdin`);
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The file --in names; one that is not there (or not a file) is a mistake in the command line. */
function readInput(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const message = `cannot read ${file}: ${(error as Error).message}`;
    throw code === "ENOENT" || code === "EISDIR" || code === "ENOTDIR" ? new CommandLineError(message) : new UsageError(message);
  }
}

/**
 * A secret (plaintext) goes to a new 0600 file renamed over the target: writing into an existing
 * file would keep whatever mode it had (0644 shows the plaintext to every local user), and a
 * crash part-way would leave it half-written. Through a symlink, it replaces the link's target.
 */
function writeOutput(file: string, data: string | Buffer, secret: boolean): void {
  try {
    if (secret) writeFileAtomic(existingTarget(file), typeof data === "string" ? Buffer.from(data, "utf8") : data);
    else writeFileSync(file, data);
  } catch (error) {
    throw new UsageError(`cannot write ${file}: ${(error as Error).message}`);
  }
}

function existingTarget(file: string): string {
  try {
    return realpathSync(file);
  } catch {
    return file;
  }
}

/** The longest encrypt-data blob in base64: that of a MAX_PLAINTEXT_BYTES plaintext. */
const MAX_BLOB_CHARS = 4 * Math.ceil(MAX_BLOB_BYTES / 3);

/** ignoreBOM: a leading U+FEFF is part of the text, and decrypt must give back every byte. */
const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * --bits as commander checks it, so that a value that is not a whole number of bytes is a bad
 * command line (exit 2) like one out of range, not a failure of the command (exit 1).
 */
function bitsIn(min: number, max: number): (value: string) => number {
  const inRange = integerIn(min, max);
  return (value) => {
    const bits = inRange(value);
    if (bits % 8 !== 0) throw new InvalidArgumentError(`a multiple of 8 in ${min}..${max}`);
    return bits;
  };
}

// encrypt -----------------------------------------------------------------------------------

interface EncryptFlags extends ClientFlags, BindingFlags {
  key: string;
  text?: string;
  in?: string;
  out?: string;
}

async function encrypt(flags: EncryptFlags): Promise<void> {
  if (flags.text !== undefined && flags.in !== undefined) throw new CommandLineError("give --text or --in, not both");
  const binding = bindingBody(flags);
  const bytes = flags.text !== undefined ? Buffer.from(flags.text, "utf8") : flags.in !== undefined ? readInput(flags.in) : await readStdin("plaintext");
  // Checked here, not left to the KMS: past the server's body limit (server.bodyLimitBytes) the
  // answer is a bare KMS.0203 that says nothing of this limit, nor of the way around it.
  if (bytes.length > MAX_PLAINTEXT_BYTES) {
    throw new UsageError(`the plaintext is ${bytes.length} bytes, and encrypt takes at most ${MAX_PLAINTEXT_BYTES}: ` +
      "for more, encrypt it locally under a data key and keep the sealed key beside it (hsmkit datakey --help)");
  }
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch {
    throw new UsageError("the plaintext is not UTF-8 text, and encrypt-data carries text: encode binary data first " +
      "(base64 FILE | hsmkit encrypt …), or encrypt it under a data key (hsmkit datakey --help)");
  }
  await withClient(flags, async (client) => {
    const body = await client.call({ method: "POST", path: "/encrypt-data" }, { body: { key_id: flags.key, plain_text: text, ...binding } });
    const blob = String(body["cipher_text"]);
    if (flags.out !== undefined) {
      writeOutput(flags.out, blob + "\n", false);
      print(flags, body, [`Encrypted ${bytes.length} bytes under key ${String(body["key_id"])}; the blob (base64) is in ${flags.out}.`]);
    } else {
      print(flags, body, [blob]);
    }
  });
}

// decrypt -----------------------------------------------------------------------------------

interface DecryptFlags extends ClientFlags, BindingFlags {
  blob?: string;
  in?: string;
  out?: string;
}

async function decrypt(flags: DecryptFlags): Promise<void> {
  if (flags.blob !== undefined && flags.in !== undefined) throw new CommandLineError("give --blob or --in, not both");
  const binding = bindingBody(flags);
  const blob = (flags.blob ?? (flags.in !== undefined ? readInput(flags.in) : await readStdin("ciphertext blob")).toString("utf8")).trim();
  if (blob.length === 0) throw new UsageError("the ciphertext blob is empty");
  // A longer one is no blob of `hsmkit encrypt` (most likely the wrong file), and a server would
  // refuse it as KMS.0203, too large, rather than say so.
  if (blob.length > MAX_BLOB_CHARS) {
    throw new UsageError(`the ciphertext blob is ${blob.length} characters, and those of hsmkit encrypt are at most ${MAX_BLOB_CHARS} ` +
      "(base64): give the blob hsmkit encrypt printed, or the file its --out wrote");
  }
  await withClient(flags, async (client) => {
    const body = await client.call({ method: "POST", path: "/decrypt-data" }, { body: { cipher_text: blob, ...binding } });
    if (flags.json) {
      if (flags.out !== undefined) writeOutput(flags.out, JSON.stringify(body, null, 2) + "\n", true);
      else print(flags, body, []);
      return;
    }
    const base64 = body["plain_text_base64"];
    const plaintext = typeof base64 === "string" ? Buffer.from(base64, "base64") : Buffer.from(String(body["plain_text"] ?? ""), "utf8");
    if (flags.out !== undefined) {
      writeOutput(flags.out, plaintext, true);
      process.stderr.write(`Decrypted ${plaintext.length} bytes (key ${String(body["key_id"])}) into ${flags.out}.\n`);
    } else {
      process.stdout.write(plaintext);
      if (process.stdout.isTTY && plaintext.length > 0 && plaintext[plaintext.length - 1] !== 0x0a) process.stdout.write("\n");
    }
  });
}

// datakey -----------------------------------------------------------------------------------

interface DatakeyFlags extends ClientFlags, BindingFlags {
  key: string;
  bits?: number;
  spec?: string;
  plaintext: boolean;
}

async function datakey(flags: DatakeyFlags): Promise<void> {
  if (flags.bits !== undefined && flags.spec !== undefined) throw new CommandLineError("give --bits or --spec, not both");
  const binding = bindingBody(flags);
  const path = flags.plaintext ? "/create-datakey" : "/create-datakey-without-plaintext";
  await withClient(flags, async (client) => {
    const body = await client.call({ method: "POST", path }, {
      body: {
        key_id: flags.key,
        ...(flags.bits !== undefined ? { datakey_length: String(flags.bits) } : {}),
        ...(flags.spec !== undefined ? { key_spec: flags.spec } : {}),
        ...binding,
      },
    });
    print(flags, body, fields([
      ["Key", String(body["key_id"])],
      ...(flags.plaintext ? [["Data key", `${String(body["plain_text"])}  (hex; use it, then forget it — keep only the sealed copy)`] as const] : []),
      ["Sealed data key", `${String(body["cipher_text"])}  (hex; the KMS decrypts it with decrypt-datakey)`],
    ]));
  });
}

// random ------------------------------------------------------------------------------------

async function random(flags: ClientFlags & { bits: number; base64?: boolean }): Promise<void> {
  await withClient(flags, async (client) => {
    const body = await client.call({ method: "POST", path: "/gen-random" }, { body: { random_data_length: String(flags.bits) } });
    const hex = String(body["random_data"]);
    print(flags, body, [flags.base64 ? Buffer.from(hex, "hex").toString("base64") : hex]);
  });
}

// Commands ----------------------------------------------------------------------------------

export function encryptCommand(): Command {
  const command = new Command("encrypt")
    .description("encrypt up to 4096 bytes of text under a key; prints the ciphertext blob (base64)")
    .requiredOption("--key <key>", "key id, alias, or <service>/default (e.g. obs/default)")
    .option("--text <string>", "the plaintext")
    .option("--in <file>", "read the plaintext from a file (default: stdin)")
    .option("--out <file>", "write the blob to a file instead of stdout");
  return addClientOptions(addBindingOptions(command, "decryption needs the same"))
    .addHelpText("after", `
Examples:
  hsmkit encrypt --key billing --text "card 4111"
  hsmkit encrypt --key billing --in secret.txt --out secret.kms --context tenant=42
  hsmkit encrypt --key billing --endpoint http://127.0.0.1:8731 < note.txt

For data over 4096 bytes, or binary data, use a data key (hsmkit datakey).`)
    .action(action((flags: EncryptFlags) => encrypt(flags)));
}

export function decryptCommand(): Command {
  const command = new Command("decrypt")
    .description("decrypt a ciphertext blob; prints the plaintext (the blob names its key)")
    .option("--blob <base64>", "the blob")
    .option("--in <file>", "read the blob (base64 text) from a file (default: stdin)")
    .option("--out <file>", "write the plaintext to a file (mode 0600) instead of stdout");
  return addClientOptions(addBindingOptions(command, "as given at encryption"))
    .addHelpText("after", `
Examples:
  hsmkit decrypt --blob "$(hsmkit encrypt --key billing --text hi)"
  hsmkit decrypt --in secret.kms --context tenant=42 --out secret.txt`)
    .action(action((flags: DecryptFlags) => decrypt(flags)));
}

export function datakeyCommand(): Command {
  const command = new Command("datakey")
    .description("generate a data key for envelope encryption: prints the key itself (hex) and its copy sealed under the CMK")
    .requiredOption("--key <key>", "the CMK that seals the data key: id, alias, or <service>/default")
    .option("--bits <n>", "data key length in bits (8-8192, a multiple of 8)", bitsIn(8, 8192))
    .addOption(new Option("--spec <spec>", "data key spec instead of --bits (default AES_256)").choices(["AES_256", "AES_128"]))
    .option("--no-plaintext", "print only the sealed copy (create-datakey-without-plaintext)");
  return addClientOptions(addBindingOptions(command, "the KMS needs the same to unseal it"))
    .addHelpText("after", `
The data key in clear is the point of this command: encrypt your data with it locally, keep only
the sealed copy beside the data, and forget the clear key. --no-plaintext never shows it.

Examples:
  hsmkit datakey --key billing
  hsmkit datakey --key billing --bits 512 --json
  hsmkit datakey --key billing --no-plaintext`)
    .action(action((flags: DatakeyFlags) => datakey(flags)));
}

export function randomCommand(): Command {
  const command = new Command("random")
    .description("print random bytes from the HSM's generator (hex, or base64)")
    .option("--bits <n>", "how many bits (8-8192, a multiple of 8)", bitsIn(8, 8192), 256)
    .option("--hex", "print hex (the default)")
    .addOption(new Option("--base64", "print base64").conflicts("hex"));
  return addClientOptions(command)
    .addHelpText("after", `
Examples:
  hsmkit random --bits 512
  hsmkit random --bits 128 --base64
  hsmkit random --endpoint http://127.0.0.1:8731 --json`)
    .action(action((flags: ClientFlags & { bits: number; base64?: boolean }) => random(flags)));
}
