/**
 * Loader for Wycheproof testvectors_v1 JSON (C2SP/wycheproof; provenance in
 * ../shared/vectors/wycheproof/SOURCE.md). One function per schema used here.
 */
import { readFileSync } from "node:fs";
import { vectorPath } from "./paths.js";

export type WycheproofResult = "valid" | "invalid" | "acceptable";

interface WycheproofFile<G> {
  algorithm: string;
  numberOfTests: number;
  testGroups: G[];
}

export interface AeadVector {
  tcId: number;
  comment: string;
  flags: string[];
  key: Buffer;
  iv: Buffer;
  aad: Buffer;
  msg: Buffer;
  ct: Buffer;
  tag: Buffer;
  result: WycheproofResult;
  keySize: number;
  ivSize: number;
  tagSize: number;
}

export interface KeywrapVector {
  tcId: number;
  comment: string;
  flags: string[];
  key: Buffer;
  msg: Buffer;
  ct: Buffer;
  result: WycheproofResult;
  keySize: number;
}

export interface MacVector {
  tcId: number;
  comment: string;
  flags: string[];
  key: Buffer;
  msg: Buffer;
  tag: Buffer;
  result: WycheproofResult;
  keySize: number;
  tagSize: number;
}

function read<G>(file: string): WycheproofFile<G> {
  const parsed = JSON.parse(readFileSync(vectorPath("wycheproof", file), "utf8")) as WycheproofFile<G>;
  const counted = parsed.testGroups.reduce((n, group) => n + (group as { tests: unknown[] }).tests.length, 0);
  if (counted !== parsed.numberOfTests) {
    throw new Error(`${file}: numberOfTests says ${parsed.numberOfTests} but ${counted} tests are present`);
  }
  return parsed;
}

const hex = (value: string): Buffer => Buffer.from(value, "hex");

type RawTest = Record<string, unknown> & { tcId: number; comment: string; flags: string[]; result: WycheproofResult };

export function loadAead(file: string): AeadVector[] {
  const parsed = read<{ keySize: number; ivSize: number; tagSize: number; tests: RawTest[] }>(file);
  return parsed.testGroups.flatMap((group) =>
    group.tests.map((t) => ({
      tcId: t.tcId, comment: t.comment, flags: t.flags, result: t.result,
      key: hex(t["key"] as string), iv: hex(t["iv"] as string), aad: hex(t["aad"] as string),
      msg: hex(t["msg"] as string), ct: hex(t["ct"] as string), tag: hex(t["tag"] as string),
      keySize: group.keySize, ivSize: group.ivSize, tagSize: group.tagSize,
    })),
  );
}

export function loadKeywrap(file: string): KeywrapVector[] {
  const parsed = read<{ keySize: number; tests: RawTest[] }>(file);
  return parsed.testGroups.flatMap((group) =>
    group.tests.map((t) => ({
      tcId: t.tcId, comment: t.comment, flags: t.flags, result: t.result,
      key: hex(t["key"] as string), msg: hex(t["msg"] as string), ct: hex(t["ct"] as string),
      keySize: group.keySize,
    })),
  );
}

export function loadMac(file: string): MacVector[] {
  const parsed = read<{ keySize: number; tagSize: number; tests: RawTest[] }>(file);
  return parsed.testGroups.flatMap((group) =>
    group.tests.map((t) => ({
      tcId: t.tcId, comment: t.comment, flags: t.flags, result: t.result,
      key: hex(t["key"] as string), msg: hex(t["msg"] as string), tag: hex(t["tag"] as string),
      keySize: group.keySize, tagSize: group.tagSize,
    })),
  );
}
