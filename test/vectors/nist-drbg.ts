/**
 * Loader for NIST CAVP SP 800-90A DRBG response files (CTR_DRBG.rsp), read at run time from
 * ../shared/vectors/nist-drbg (provenance in its SOURCE.md: CAVS 14.3 drbgtestvectors, mirrored
 * from csrc.nist.gov by coruus/nist-testvectors). Files keep NIST's CRLF line endings.
 *
 * File layout: a section starts with a bracketed name such as "[AES-256 use df]" followed by
 * bracketed parameters ("[EntropyInputLen = 256]", lengths in bits); then records, each starting
 * with "COUNT = n" and listing "Name = hex" lines in the order the operations happen.
 *
 * The three files differ in the operations between instantiate and the final compare:
 *   no_reseed  instantiate; generate(AdditionalInput #1) discarded; generate(AdditionalInput #2)
 *   pr_false   instantiate; reseed(EntropyInputReseed, AdditionalInputReseed); generate; generate
 *   pr_true    instantiate; then twice: generate with prediction resistance, which by SP 800-90A
 *              §9.3.1 is reseed(EntropyInputPR, AdditionalInput) and then generate with no
 *              additional input.
 */
import { readFileSync } from "node:fs";

import { vectorPath } from "./paths.js";

export type DrbgVectorFile = "no_reseed" | "pr_false" | "pr_true";

export const DRBG_VECTOR_FILES: readonly DrbgVectorFile[] = ["no_reseed", "pr_false", "pr_true"];

/** One generate call of a record. */
export interface DrbgGenerateStep {
  additionalInput: Buffer;
  /** pr_true only: the entropy for the reseed that precedes this generate. */
  entropyInputPR?: Buffer;
}

export interface CtrDrbgRecord {
  count: number;
  entropyInput: Buffer;
  nonce: Buffer;
  personalizationString: Buffer;
  /** pr_false only. */
  reseed?: { entropyInput: Buffer; additionalInput: Buffer };
  /** Always two; the second one's output is ReturnedBits. */
  generates: DrbgGenerateStep[];
  returnedBits: Buffer;
}

export interface CtrDrbgSection {
  file: DrbgVectorFile;
  /** As in the file, e.g. "AES-256 use df". */
  name: string;
  cipher: "AES-128" | "AES-192" | "AES-256" | "3KeyTDEA";
  /** AES key length in bytes; 0 for 3KeyTDEA. */
  keyLength: 0 | 16 | 24 | 32;
  derivationFunction: boolean;
  predictionResistance: boolean;
  /** The bracketed parameters, e.g. { EntropyInputLen: 256, ReturnedBitsLen: 512 } (bits). */
  parameters: Record<string, number>;
  records: CtrDrbgRecord[];
}

export interface CtrDrbgVectorFile {
  file: DrbgVectorFile;
  path: string;
  sections: CtrDrbgSection[];
  /** "COUNT = " lines in the file, counted independently of the parser, as a cross-check. */
  countLines: number;
}

/** Why the 3KeyTDEA sections are not run. */
export const TDEA_SKIP_REASON =
  "hsmkit's CTR_DRBG is AES-only (DESIGN: AES-256 with a derivation function); three-key TDEA is " +
  "withdrawn for new use (SP 800-131A Rev. 2 disallows TDEA encryption after 2023), so it is not implemented";

const CIPHERS = { "AES-128": 16, "AES-192": 24, "AES-256": 32, "3KeyTDEA": 0 } as const;

function hex(value: string, where: string): Buffer {
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(value)) throw new Error(`${where}: not a hex string`);
  return Buffer.from(value, "hex");
}

function parseSectionName(name: string, file: DrbgVectorFile): Omit<CtrDrbgSection, "parameters" | "records"> {
  const match = /^(AES-128|AES-192|AES-256|3KeyTDEA) (use df|no df)$/.exec(name);
  if (!match) throw new Error(`${file}: unknown CTR_DRBG section [${name}]`);
  const cipher = match[1] as keyof typeof CIPHERS;
  return {
    file,
    name,
    cipher,
    keyLength: CIPHERS[cipher],
    derivationFunction: match[2] === "use df",
    predictionResistance: file === "pr_true",
  };
}

function buildRecord(fields: [string, string][], section: CtrDrbgSection, line: number): CtrDrbgRecord {
  const where = `${section.file} [${section.name}] record ending line ${line}`;
  let index = 0;
  const take = (name: string): Buffer => {
    const field = fields[index];
    if (field === undefined || field[0] !== name) {
      throw new Error(`${where}: expected ${name}, found ${field === undefined ? "end of record" : field[0]}`);
    }
    index++;
    return hex(field[1], `${where} ${name}`);
  };
  const countField = fields[index++];
  if (countField === undefined || countField[0] !== "COUNT") throw new Error(`${where}: record without COUNT`);
  const record: CtrDrbgRecord = {
    count: Number(countField[1]),
    entropyInput: take("EntropyInput"),
    nonce: take("Nonce"),
    personalizationString: take("PersonalizationString"),
    generates: [],
    returnedBits: Buffer.alloc(0),
  };
  if (section.file === "pr_false") {
    record.reseed = { entropyInput: take("EntropyInputReseed"), additionalInput: take("AdditionalInputReseed") };
  }
  for (let i = 0; i < 2; i++) {
    const additionalInput = take("AdditionalInput");
    record.generates.push(
      section.file === "pr_true" ? { additionalInput, entropyInputPR: take("EntropyInputPR") } : { additionalInput },
    );
  }
  record.returnedBits = take("ReturnedBits");
  if (index !== fields.length) throw new Error(`${where}: unexpected field ${fields[index]?.[0]}`);

  // The bracketed lengths (bits) must match what was parsed, or the parse went wrong.
  const bits = (buffer: Buffer): number => buffer.length * 8;
  const expect = (parameter: string, actual: number): void => {
    const declared = section.parameters[parameter];
    if (declared !== undefined && declared !== actual) {
      throw new Error(`${where}: ${parameter} is ${declared} but the value has ${actual} bits`);
    }
  };
  expect("EntropyInputLen", bits(record.entropyInput));
  expect("NonceLen", bits(record.nonce));
  expect("PersonalizationStringLen", bits(record.personalizationString));
  expect("ReturnedBitsLen", bits(record.returnedBits));
  for (const step of record.generates) {
    expect("AdditionalInputLen", bits(step.additionalInput));
    if (step.entropyInputPR !== undefined) expect("EntropyInputLen", bits(step.entropyInputPR));
  }
  if (record.reseed) {
    expect("EntropyInputLen", bits(record.reseed.entropyInput));
    expect("AdditionalInputLen", bits(record.reseed.additionalInput));
  }
  return record;
}

/** Parses one CTR_DRBG.rsp. Throws (naming the file and line) on anything it does not expect. */
export function parseCtrDrbgResponseFile(text: string, file: DrbgVectorFile, path: string = file): CtrDrbgVectorFile {
  const lines = text.split(/\r?\n/);
  const sections: CtrDrbgSection[] = [];
  let section: CtrDrbgSection | undefined;
  let fields: [string, string][] = [];
  let countLines = 0;

  const flush = (line: number): void => {
    if (fields.length === 0) return;
    if (section === undefined) throw new Error(`${path}:${line}: record outside any section`);
    section.records.push(buildRecord(fields, section, line));
    fields = [];
  };

  lines.forEach((raw, i) => {
    const lineNumber = i + 1;
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) {
      flush(lineNumber);
      return;
    }
    const bracket = /^\[(.*)\]$/.exec(line);
    if (bracket) {
      flush(lineNumber);
      const inner = bracket[1] ?? "";
      const parameter = /^(\w+) = (\w+)$/.exec(inner);
      if (parameter) {
        if (section === undefined) throw new Error(`${path}:${lineNumber}: parameter outside any section`);
        const [, key = "", value = ""] = parameter;
        section.parameters[key] = value === "True" ? 1 : value === "False" ? 0 : Number(value);
        if (key === "PredictionResistance" && (value === "True") !== section.predictionResistance) {
          throw new Error(`${path}:${lineNumber}: PredictionResistance = ${value} in the ${file} file`);
        }
      } else {
        // A new section, or the same name again with other lengths: a new group either way.
        section = { ...parseSectionName(inner, file), parameters: {}, records: [] };
        sections.push(section);
      }
      return;
    }
    const field = /^(\w+) = ?(.*)$/.exec(line);
    if (!field) throw new Error(`${path}:${lineNumber}: cannot parse "${line}"`);
    const [, name = "", value = ""] = field;
    if (name === "COUNT") {
      countLines++;
      flush(lineNumber);
    }
    fields.push([name, value.trim()]);
  });
  flush(lines.length);
  return { file, path, sections, countLines };
}

/** Loads ../shared/vectors/nist-drbg/<file>/CTR_DRBG.rsp; throws loudly if it is missing. */
export function loadCtrDrbgVectors(file: DrbgVectorFile): CtrDrbgVectorFile {
  const path = vectorPath("nist-drbg", file, "CTR_DRBG.rsp");
  return parseCtrDrbgResponseFile(readFileSync(path, "latin1"), file, path);
}
