// The backend's scenarios (./backend-scenarios.ts) on SoftHSMv2, loaded by path as a deployment
// would load it: a fresh token per test, serially (one SoftHSMv2 per process). Skipped, with the
// reason in each title, when SoftHSMv2 is not installed.
import { SOFTHSM_FIXTURE } from "./backend-fixtures.js";
import { registerBackendScenarios } from "./backend-scenarios.js";

registerBackendScenarios(SOFTHSM_FIXTURE);
