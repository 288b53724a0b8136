// The HTTP API end to end on the emulator token, through Huawei's SDK core (scenarios in
// ./helpers/scenarios.ts), with the service in the test's thread; and the scenarios whose values
// cross the KMS thread's boundary in every shape (bytes, errors, tokens, audit pages) once more
// behind the KMS thread (server.kmsThread, the production default).
import { EMULATOR_KMS_THREAD, EMULATOR_TOKEN, registerServerScenarios, SCENARIOS } from "./helpers/scenarios.js";

registerServerScenarios(EMULATOR_TOKEN, SCENARIOS);
const ACROSS_THE_THREAD = ["key lifecycle", "encrypt-data / decrypt-data", "data keys", "re-encrypt", "gen-random", "audit as an auditor", "X-Auth-Token"];
registerServerScenarios(EMULATOR_KMS_THREAD, SCENARIOS.filter((s) => ACROSS_THE_THREAD.some((prefix) => s.title.startsWith(prefix))));
