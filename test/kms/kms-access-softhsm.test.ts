// Roles, isolation, grants and tags through the Kms on SoftHSMv2 (scenarios in ./kms-access-scenarios.ts);
// skipped, with the reason in each title, when SoftHSMv2 is not installed.
import { SOFTHSM_FIXTURE } from "./backend-fixtures.js";
import { ACCESS_SCENARIOS } from "./kms-access-scenarios.js";
import { registerKmsScenarios } from "./kms-fixtures.js";

registerKmsScenarios(SOFTHSM_FIXTURE, ACCESS_SCENARIOS);
