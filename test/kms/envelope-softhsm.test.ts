// Blob v1 through the backend on SoftHSMv2 (scenarios in ./envelope-scenarios.ts); skipped, with
// the reason in each title, when SoftHSMv2 is not installed.
import { SOFTHSM_FIXTURE } from "./backend-fixtures.js";
import { registerEnvelopeScenarios } from "./envelope-scenarios.js";

registerEnvelopeScenarios(SOFTHSM_FIXTURE);
