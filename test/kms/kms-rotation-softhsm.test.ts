// Rotation through the Kms on SoftHSMv2 (scenarios in ./kms-rotation-scenarios.ts);
// skipped, with the reason in each title, when SoftHSMv2 is not installed.
import { SOFTHSM_FIXTURE } from "./backend-fixtures.js";
import { ROTATION_SCENARIOS } from "./kms-rotation-scenarios.js";
import { registerKmsScenarios } from "./kms-fixtures.js";

registerKmsScenarios(SOFTHSM_FIXTURE, ROTATION_SCENARIOS);
