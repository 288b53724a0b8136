/**
 * The AK/SK the KMS HTTP target signs with: an explicit --credentials FILE; else HSMKIT_AK,
 * HSMKIT_SK and HSMKIT_PROJECT_ID when HSMKIT_AK and HSMKIT_SK are set; else the data directory's
 * default identity, ./.hsmkit/credentials.json (written by the server on its first start, mode 0600:
 * `{project_id, domain_id, ak, sk, user_id}`).
 */
import { readFileSync } from "node:fs";
import { BenchError } from "../types.js";

export const DEFAULT_CREDENTIALS_FILE = "./.hsmkit/credentials.json";

export interface BenchCredentials {
  accessKey: string;
  secretKey: string;
  projectId: string;
  /** Where they came from, for the report (never the SK). */
  source: string;
}

function fromFile(file: string): BenchCredentials {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new BenchError(`cannot read the credentials file ${file} (${code ?? String(error)}): pass --credentials FILE (a server's <data>/credentials.json) or set HSMKIT_AK, HSMKIT_SK and HSMKIT_PROJECT_ID`);
  }
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new BenchError(`${file} is not JSON: expected {"project_id", "ak", "sk", …} as the server writes in <data>/credentials.json`);
  }
  const { ak, sk, project_id: projectId } = parsed;
  if (typeof ak !== "string" || typeof sk !== "string" || typeof projectId !== "string" || ak === "" || sk === "" || projectId === "") {
    throw new BenchError(`${file} lacks "ak", "sk" or "project_id" (expected the server's <data>/credentials.json)`);
  }
  return { accessKey: ak, secretKey: sk, projectId, source: `file ${file}` };
}

/** Resolves the credentials as the file comment says; BenchError (exit 1) when none are usable. */
export function loadCredentials(file: string | undefined, env: NodeJS.ProcessEnv = process.env): BenchCredentials {
  if (file !== undefined) return fromFile(file);
  const ak = env["HSMKIT_AK"];
  const sk = env["HSMKIT_SK"];
  if (ak !== undefined && ak !== "" && sk !== undefined && sk !== "") {
    const projectId = env["HSMKIT_PROJECT_ID"];
    if (projectId === undefined || projectId === "") throw new BenchError("HSMKIT_AK and HSMKIT_SK are set but HSMKIT_PROJECT_ID is not: the KMS paths need the project id");
    return { accessKey: ak, secretKey: sk, projectId, source: "environment HSMKIT_AK/HSMKIT_SK/HSMKIT_PROJECT_ID" };
  }
  return fromFile(DEFAULT_CREDENTIALS_FILE);
}
