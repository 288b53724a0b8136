/**
 * `hsmkit token init | list | info | objects | delete`: emulator token directories from the
 * command line, as softhsm2-util serves SoftHSMv2's. A token directory holds one token per slot
 * (docs/emulator-storage.md); commands pick a token by --slot, --label or --serial.
 *
 * `init` and `objects` go through the emulator's PKCS#11 surface (C_InitToken, C_InitPIN,
 * C_Login, C_FindObjects, C_GetAttributeValue), so they exercise exactly what an application
 * gets; `list` and `info` read token.json files without a lock or a PIN; `delete` takes the lock
 * and removes the token's directory. PINs come from --so-pin / --pin, else HSMKIT_SO_PIN /
 * HSMKIT_PIN (so they need not appear in the process list), else a prompt on a terminal.
 * Every command prints for people, or JSON with --json. Values are never printed.
 */
import { Command, InvalidArgumentError } from "commander";
import { Emulator } from "../../emulator/emulator.js";
import { pkcs11, constantName, type Handle } from "../../emulator/pkcs11.js";
import { TokenDirectoryLockedError, TokenFileError } from "../../emulator/store/errors.js";
import { inspectTokenDirectory, type DirectorySummary, type PinSummary, type TokenSummary } from "../../emulator/store/inspect.js";
import { MAX_SLOT } from "../../emulator/store/layout.js";
import { TokenDirectory } from "../../emulator/store/token-directory.js";
import { checkKdf } from "../../emulator/store/token-record.js";
import { DEFAULT_KDF, MAX_PIN, MIN_PIN, type KdfParams } from "../../emulator/token.js";
import { CommandLineError, reportCommandLineError } from "./program.js";

const P = pkcs11;

/**
 * Where tokens live unless --dir says otherwise: $HSMKIT_TOKEN_DIR, else the emulator's documented
 * default (docs/emulator-storage.md). Not the KMS's own token, which `hsmkit init` and `serve` keep
 * in `<data>/token`.
 */
export function defaultTokenDir(): string {
  return process.env["HSMKIT_TOKEN_DIR"] ?? ".hsmkit/tokens";
}

/** A failure to report in one line (and exit 1), as opposed to a defect with a stack. */
class UsageError extends Error {}

interface Common {
  dir: string;
  json?: boolean;
}

interface Selector {
  slot?: number;
  label?: string;
  serial?: string;
}

function parseSlot(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) > MAX_SLOT) throw new InvalidArgumentError(`a slot number 0..${MAX_SLOT}`);
  return Number(value);
}

function parseKdf(value: string): KdfParams {
  const parts = value.split(/[,:]/).map(Number);
  const [N, r, p] = parts;
  if (parts.length !== 3 || N === undefined || r === undefined || p === undefined) throw new InvalidArgumentError("N,r,p, e.g. 16384,8,1");
  const kdf = { N, r, p };
  const bad = checkKdf(kdf);
  if (bad !== undefined) throw new InvalidArgumentError(bad);
  return kdf;
}

function print(options: { json?: boolean }, json: unknown, lines: string[]): void {
  process.stdout.write(options.json ? JSON.stringify(json, null, 2) + "\n" : lines.join("\n") + "\n");
}

/** Reads a PIN from a terminal without echo. */
async function prompt(question: string): Promise<string> {
  const input = process.stdin;
  if (!input.isTTY) throw new UsageError(`${question.replace(/:\s*$/, "")} is needed: give it as an option or in the environment`);
  process.stderr.write(question);
  input.setRawMode(true);
  input.resume();
  input.setEncoding("utf8");
  try {
    return await new Promise<string>((resolve, reject) => {
      let text = "";
      const onData = (chunk: string): void => {
        for (const char of chunk) {
          if (char === "\r" || char === "\n") {
            input.off("data", onData);
            resolve(text);
            return;
          }
          if (char === "\u0003") {
            input.off("data", onData);
            reject(new UsageError("interrupted"));
            return;
          }
          text = char === "\u007f" || char === "\b" ? text.slice(0, -1) : text + char;
        }
      };
      input.on("data", onData);
    });
  } finally {
    input.setRawMode(false);
    input.pause();
    process.stderr.write("\n");
  }
}

async function pinFrom(given: string | undefined, variable: "HSMKIT_PIN" | "HSMKIT_SO_PIN", question: string): Promise<string> {
  const pin = given ?? process.env[variable] ?? (await prompt(question));
  const length = Buffer.byteLength(pin, "utf8");
  if (length < MIN_PIN || length > MAX_PIN) throw new UsageError(`PINs are ${MIN_PIN}..${MAX_PIN} bytes`);
  return pin;
}

function addSelector(command: Command): Command {
  return command
    .option("--slot <n>", "the token in this slot", parseSlot)
    .option("--label <label>", "the token with this label")
    .option("--serial <serial>", "the token with this serial number");
}

function addCommon(command: Command): Command {
  return command
    .option("--dir <path>", "token directory (one subdirectory per slot); $HSMKIT_TOKEN_DIR sets the default", defaultTokenDir())
    .option("--json", "print machine-readable JSON");
}

/** The one token the selector names (or the only token, when none is given). */
function select(summary: DirectorySummary, selector: Selector): TokenSummary {
  const given = [selector.slot !== undefined, selector.label !== undefined, selector.serial !== undefined].filter(Boolean).length;
  if (given > 1) throw new CommandLineError("give one of --slot, --label, --serial");
  if (!summary.exists) throw new UsageError(`no token directory at ${summary.path}`);
  const matches = summary.tokens.filter((token) =>
    selector.slot !== undefined ? token.slot === selector.slot
      : selector.label !== undefined ? token.label === selector.label
        : selector.serial !== undefined ? token.serial === selector.serial
          : true);
  if (matches.length === 1) return matches[0]!;
  if (matches.length === 0) {
    const what = selector.slot !== undefined ? `in slot ${selector.slot}` : selector.label !== undefined ? `labelled "${selector.label}"`
      : selector.serial !== undefined ? `with serial ${selector.serial}` : "at all";
    throw new UsageError(`${summary.path} holds no initialized token ${what}`);
  }
  const list = matches.map((t) => `slot ${t.slot} (serial ${t.serial})`).join(", ");
  throw new UsageError(given === 0 ? `${summary.path} holds several tokens (${list}): choose one with --slot, --label or --serial`
    : `several tokens match (${list}): choose one with --slot or --serial`);
}

function pinState(pin: PinSummary): string {
  if (!pin.initialized) return "not set";
  if (pin.locked) return "LOCKED";
  return pin.failures > 0 ? `set, ${pin.failures} failed attempt${pin.failures === 1 ? "" : "s"}` : "set";
}

function ownerText(summary: DirectorySummary): string {
  if (summary.owner === null) return "not in use";
  if (summary.owner === "unreadable") return "locked (the lock file is not readable as an hsmkit lock)";
  const o = summary.owner;
  return `in use by process ${o.pid} on ${o.hostname} since ${o.since} (${o.command})`;
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? "").length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ").trimEnd());
}

/** Opens an emulator on the directory; the lock's owner, if any, is the error. */
function openEmulator(dir: string, slots: number, kdf?: KdfParams): Emulator {
  const emulator = new Emulator(kdf === undefined ? { tokenDir: dir, slots } : { tokenDir: dir, slots, kdf });
  emulator.C_Initialize();
  return emulator;
}

function slotHandle(emulator: Emulator, slot: number): Handle {
  const handle = emulator.C_GetSlotList().find((h) => Number(h.readBigUInt64LE()) === slot);
  if (handle === undefined) throw new UsageError(`no slot ${slot}`);
  return handle;
}

// init

interface InitOptions extends Common, Selector {
  soPin?: string;
  pin?: string;
  force?: boolean;
  kdf?: KdfParams;
}

async function init(options: InitOptions): Promise<void> {
  if (options.label === undefined) throw new UsageError("--label is required");
  if (Buffer.byteLength(options.label, "utf8") > 32) throw new CommandLineError("token labels are at most 32 bytes");
  const before = inspectTokenDirectory(options.dir);
  let slot = options.slot;
  if (slot === undefined) {
    slot = 0;
    while (before.tokens.some((t) => t.slot === slot)) slot++;
  }
  const existing = before.tokens.find((t) => t.slot === slot);
  if (existing !== undefined && !options.force) {
    throw new UsageError(`slot ${slot} already holds token "${existing.label}" (serial ${existing.serial}); ` +
      "--force re-initializes it, which needs its SO PIN and destroys its objects");
  }
  const soPin = await pinFrom(options.soPin, "HSMKIT_SO_PIN", "SO PIN: ");
  const userPin = await pinFrom(options.pin, "HSMKIT_PIN", "User PIN: ");
  const emulator = openEmulator(options.dir, slot + 1, options.kdf ?? DEFAULT_KDF);
  try {
    const handle = slotHandle(emulator, slot);
    emulator.C_InitToken(handle, soPin, options.label);
    const session = emulator.C_OpenSession(handle, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
    emulator.C_Login(session, P.CKU_SO, soPin);
    emulator.C_InitPIN(session, userPin);
    emulator.C_Logout(session);
    emulator.C_CloseSession(session);
    const info = emulator.C_GetTokenInfo(handle);
    const token = { slot, serial: info.serialNumber.trim(), label: info.label.trimEnd(), path: before.path };
    print(options, token, [`Token "${token.label}" initialized in slot ${slot} (serial ${token.serial}) of ${before.path}`]);
  } finally {
    emulator.close();
  }
}

// list

function list(options: Common): void {
  const summary = inspectTokenDirectory(options.dir);
  const lines: string[] = [];
  if (!summary.exists) {
    lines.push(`No token directory at ${summary.path}.`);
  } else if (summary.tokens.length === 0 && summary.unreadable.length === 0) {
    lines.push(`No tokens in ${summary.path} (${ownerText(summary)}).`);
  } else {
    lines.push(`Token directory ${summary.path} (${ownerText(summary)})`, "");
    lines.push(...table([
      ["Slot", "Serial", "Label", "Objects", "User PIN", "SO PIN"],
      ...summary.tokens.map((t) => [String(t.slot), t.serial, t.label, String(t.objectFiles), pinState(t.userPin), pinState(t.soPin)]),
    ]));
    for (const bad of summary.unreadable) lines.push(`slot ${bad.slot}: UNREADABLE: ${bad.error}`);
  }
  print(options, summary, lines);
}

// info

function info(options: Common & Selector): void {
  const summary = inspectTokenDirectory(options.dir);
  const token = select(summary, options);
  const kdf = (pin: PinSummary): string => (pin.kdf === null ? "" : ` (scrypt N=${pin.kdf.N}, r=${pin.kdf.r}, p=${pin.kdf.p})`);
  print(options, { ...token, directory: summary.path, owner: summary.owner }, [
    `Label:          ${token.label}`,
    `Serial:         ${token.serial}`,
    `Slot:           ${token.slot}`,
    `Path:           ${token.path}`,
    `Initialized:    ${token.initializedAt}`,
    `Token id:       ${token.tokenId}`,
    `Object files:   ${token.objectFiles} (sealed; \`hsmkit token objects\` lists them with the user PIN)`,
    `User PIN:       ${pinState(token.userPin)}${kdf(token.userPin)}`,
    `SO PIN:         ${pinState(token.soPin)}${kdf(token.soPin)}`,
    `Directory:      ${summary.path} (${ownerText(summary)})`,
  ]);
}

// objects

const FLAGS: ReadonlyArray<[number, string]> = [
  [P.CKA_TOKEN, "token"], [P.CKA_PRIVATE, "private"], [P.CKA_SENSITIVE, "sensitive"], [P.CKA_EXTRACTABLE, "extractable"],
  [P.CKA_MODIFIABLE, "modifiable"], [P.CKA_LOCAL, "local"], [P.CKA_ENCRYPT, "encrypt"], [P.CKA_DECRYPT, "decrypt"],
  [P.CKA_SIGN, "sign"], [P.CKA_VERIFY, "verify"], [P.CKA_WRAP, "wrap"], [P.CKA_UNWRAP, "unwrap"], [P.CKA_DERIVE, "derive"],
  [P.CKA_TRUSTED, "trusted"],
];

interface ObjectRow {
  handle: number;
  class: string;
  keyType: string | null;
  label: string;
  id: string;
  /** Key length in bits (CKA_VALUE_LEN × 8, or CKA_MODULUS_BITS), when the object says. */
  bits: number | null;
  flags: string[];
}

/** One attribute, or undefined where the object has none (never a value: only metadata is asked for). */
function attribute(emulator: Emulator, session: Handle, object: Handle, type: number): Buffer | undefined {
  try {
    return emulator.C_GetAttributeValue(session, object, [{ type }])[0]?.value;
  } catch {
    return undefined;
  }
}

function describeObject(emulator: Emulator, session: Handle, object: Handle): ObjectRow {
  const ulong = (type: number): number | undefined => {
    const value = attribute(emulator, session, object, type);
    return value === undefined || value.length !== 8 ? undefined : Number(value.readBigUInt64LE());
  };
  const objectClass = ulong(P.CKA_CLASS);
  const keyType = ulong(P.CKA_KEY_TYPE);
  const valueLength = ulong(P.CKA_VALUE_LEN);
  const modulusBits = ulong(P.CKA_MODULUS_BITS);
  return {
    handle: Number(object.readBigUInt64LE()),
    class: objectClass === undefined ? "?" : constantName("CKO_", objectClass),
    keyType: keyType === undefined ? null : constantName("CKK_", keyType),
    label: attribute(emulator, session, object, P.CKA_LABEL)?.toString("utf8") ?? "",
    id: attribute(emulator, session, object, P.CKA_ID)?.toString("hex") ?? "",
    bits: valueLength !== undefined ? valueLength * 8 : modulusBits ?? null,
    flags: FLAGS.filter(([type]) => {
      const value = attribute(emulator, session, object, type);
      return value !== undefined && value.length === 1 && value[0] !== 0;
    }).map(([, name]) => name),
  };
}

async function objects(options: Common & Selector & { pin?: string }): Promise<void> {
  const token = select(inspectTokenDirectory(options.dir), options);
  if (!token.userPin.initialized) throw new UsageError(`token "${token.label}" has no user PIN: its objects cannot be read`);
  const pin = await pinFrom(options.pin, "HSMKIT_PIN", "User PIN: ");
  const emulator = openEmulator(options.dir, token.slot + 1);
  try {
    const session = emulator.C_OpenSession(slotHandle(emulator, token.slot), P.CKF_SERIAL_SESSION);
    try {
      emulator.C_Login(session, P.CKU_USER, pin);
    } catch (error) {
      const code = (error as { code?: number }).code;
      if (code === P.CKR_PIN_INCORRECT) throw new UsageError("wrong PIN (CKR_PIN_INCORRECT); the failure is counted");
      if (code === P.CKR_PIN_LOCKED) throw new UsageError("the user PIN is locked (CKR_PIN_LOCKED)");
      throw error;
    }
    emulator.C_FindObjectsInit(session, []);
    const handles = emulator.C_FindObjects(session, 0xffffffff);
    emulator.C_FindObjectsFinal(session);
    const rows = handles.map((handle) => describeObject(emulator, session, handle)).sort((a, b) => a.handle - b.handle);
    emulator.C_Logout(session);
    const lines = [`Token "${token.label}" (slot ${token.slot}, serial ${token.serial}): ${rows.length} object${rows.length === 1 ? "" : "s"}`];
    if (rows.length > 0) {
      lines.push("", ...table([
        ["Handle", "Class", "Key type", "Bits", "Label", "ID", "Flags"],
        ...rows.map((r) => [String(r.handle), r.class, r.keyType ?? "", r.bits === null ? "" : String(r.bits), r.label, r.id, r.flags.join(",")]),
      ]));
    }
    print(options, { slot: token.slot, serial: token.serial, label: token.label, objects: rows }, lines);
  } finally {
    emulator.close();
  }
}

// delete

function remove(options: Common & Selector): void {
  const summary = inspectTokenDirectory(options.dir);
  const token = select(summary, options);
  const directory = TokenDirectory.open(options.dir);
  try {
    directory.deleteToken(token.slot);
  } finally {
    directory.close();
  }
  print(options, { deleted: { slot: token.slot, serial: token.serial, label: token.label } },
    [`Deleted token "${token.label}" (serial ${token.serial}) from slot ${token.slot} of ${summary.path}`]);
}

/** Runs a command body; expected failures print one line and set exit status 1 (a CommandLineError: 2). */
function action<T extends unknown[]>(body: (...args: T) => void | Promise<void>): (...args: T) => Promise<void> {
  return async (...args: T) => {
    try {
      await body(...args);
    } catch (error) {
      if (error instanceof CommandLineError) {
        reportCommandLineError(error);
        return;
      }
      if (error instanceof UsageError || error instanceof TokenDirectoryLockedError || error instanceof TokenFileError) {
        process.stderr.write(`hsmkit: ${error.message}\n`);
        process.exitCode = 1;
        return;
      }
      if (error instanceof P.Pkcs11Error) {
        const pkcs11Error = error as InstanceType<typeof P.Pkcs11Error> & { method?: string };
        process.stderr.write(`hsmkit: ${pkcs11Error.method ?? "PKCS#11"} failed: ${pkcs11Error.message}\n`);
        process.exitCode = 1;
        return;
      }
      throw error;
    }
  };
}

export function tokenCommand(): Command {
  const command = new Command("token").description("manage emulator token directories (as softhsm2-util manages SoftHSMv2's)")
    .addHelpText("after", `
Every subcommand takes --dir (default $HSMKIT_TOKEN_DIR, else .hsmkit/tokens). The KMS's own token,
made by hsmkit init or serve, is in <data>/token: --dir .hsmkit/token. PINs not given as options
come from $HSMKIT_SO_PIN and $HSMKIT_PIN, else a prompt on a terminal.

Examples:
  hsmkit token init --label app --so-pin 87654321 --pin 12345678
  hsmkit token list --dir .hsmkit/token
  hsmkit token objects --label app --pin 12345678`);

  addCommon(command.command("init"))
    .description("initialize a token: SO PIN, label, user PIN (the first free slot unless --slot)")
    .requiredOption("--label <label>", "token label (up to 32 bytes)")
    .option("--slot <n>", "slot to initialize (default: the first without a token)", parseSlot)
    .option("--so-pin <pin>", "Security Officer PIN (default: $HSMKIT_SO_PIN, else prompt)")
    .option("--pin <pin>", "user PIN (default: $HSMKIT_PIN, else prompt)")
    .option("--force", "re-initialize a slot that holds a token (needs its SO PIN; destroys its objects)")
    .option("--kdf <N,r,p>", `scrypt cost of the PIN records (default: ${DEFAULT_KDF.N},${DEFAULT_KDF.r},${DEFAULT_KDF.p})`, parseKdf)
    .addHelpText("after", `
Examples:
  hsmkit token init --label app --so-pin 87654321 --pin 12345678
  hsmkit token init --dir /srv/tokens --slot 2 --label backup            # prompts for both PINs
  hsmkit token init --slot 0 --label app --force --so-pin 87654321 --pin 12345678`)
    .action(action((options: InitOptions) => init(options)));

  addCommon(command.command("list"))
    .description("list the tokens of a directory: slot, serial, label, object count, PIN states")
    .addHelpText("after", `
Examples:
  hsmkit token list
  hsmkit token list --dir .hsmkit/token --json`)
    .action(action((options: Common) => list(options)));

  addSelector(addCommon(command.command("info")))
    .description("show one token's details (no PIN needed)")
    .addHelpText("after", `
Examples:
  hsmkit token info --label app
  hsmkit token info --dir /srv/tokens --slot 2 --json`)
    .action(action((options: Common & Selector) => info(options)));

  addSelector(addCommon(command.command("objects")))
    .description("list a token's objects after a user login: handle, class, key type, label, id, flags — never values")
    .option("--pin <pin>", "user PIN (default: $HSMKIT_PIN, else prompt)")
    .addHelpText("after", `
Examples:
  hsmkit token objects --label app --pin 12345678
  hsmkit token objects --dir /srv/tokens --slot 2 --json                 # prompts for the user PIN`)
    .action(action((options: Common & Selector & { pin?: string }) => objects(options)));

  addSelector(addCommon(command.command("delete")))
    .description("delete a token and all its objects (no PIN asked: the directory's file permissions protect it)")
    .addHelpText("after", `
Examples:
  hsmkit token delete --label backup
  hsmkit token delete --dir /srv/tokens --serial 9f3c2a17d04b6e85`)
    .action(action((options: Common & Selector) => remove(options)));

  return command;
}
