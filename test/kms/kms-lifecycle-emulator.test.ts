// The key lifecycle through the Kms on the emulator (scenarios in ./kms-lifecycle-scenarios.ts);
import { EMULATOR } from "./backend-fixtures.js";
import { LIFECYCLE_SCENARIOS } from "./kms-lifecycle-scenarios.js";
import { registerKmsScenarios } from "./kms-fixtures.js";

registerKmsScenarios(EMULATOR, LIFECYCLE_SCENARIOS);
