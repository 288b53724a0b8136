/**
 * A worker thread for the SoftHSMv2 worker_threads test: opens its own backend on the token the
 * main thread opened (the library is already initialized: CKR_CRYPTOKI_ALREADY_INITIALIZED), runs
 * encrypt/decrypt round trips under a version the main thread created, and reports.
 */
import { parentPort, workerData } from "node:worker_threads";
import { openBackend } from "../../src/kms/backend/graphene.js";

export interface WorkerRequest {
  library: string;
  label: string;
  pin: string;
  wrapped: Uint8Array;
  rounds: number;
}

export interface WorkerReply {
  ok: number;
  rootCreated: boolean;
  rootId: string;
  recoveries: number;
}

const request = workerData as WorkerRequest;
const backend = openBackend({ module: request.library, tokenLabel: request.label, pin: request.pin, createKeys: false });
try {
  const version = { id: "shared:1", wrapped: Buffer.from(request.wrapped) };
  let ok = 0;
  for (let i = 0; i < request.rounds; i++) {
    const iv = backend.random(12);
    const plaintext = backend.random(64);
    if (backend.decrypt(version, iv, Buffer.alloc(0), backend.encrypt(version, iv, Buffer.alloc(0), plaintext)).equals(plaintext)) ok++;
  }
  const info = backend.info();
  const reply: WorkerReply = { ok, rootCreated: info.rootKey.created, rootId: info.rootKey.id, recoveries: info.recoveries };
  parentPort!.postMessage(reply);
} finally {
  backend.close();
}
