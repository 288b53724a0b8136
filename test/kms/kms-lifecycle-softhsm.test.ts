// The key lifecycle through the Kms on SoftHSMv2 (scenarios in ./kms-lifecycle-scenarios.ts);
// skipped, with the reason in each title, when SoftHSMv2 is not installed.
import { SOFTHSM_FIXTURE } from "./backend-fixtures.js";
import { LIFECYCLE_SCENARIOS } from "./kms-lifecycle-scenarios.js";
import { registerKmsScenarios } from "./kms-fixtures.js";

registerKmsScenarios(SOFTHSM_FIXTURE, LIFECYCLE_SCENARIOS);
