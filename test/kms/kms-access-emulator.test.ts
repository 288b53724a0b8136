// Roles, isolation, grants and tags through the Kms on the emulator (scenarios in ./kms-access-scenarios.ts);
import { EMULATOR } from "./backend-fixtures.js";
import { ACCESS_SCENARIOS } from "./kms-access-scenarios.js";
import { registerKmsScenarios } from "./kms-fixtures.js";

registerKmsScenarios(EMULATOR, ACCESS_SCENARIOS);
