// Rotation through the Kms on the emulator (scenarios in ./kms-rotation-scenarios.ts);
import { EMULATOR } from "./backend-fixtures.js";
import { ROTATION_SCENARIOS } from "./kms-rotation-scenarios.js";
import { registerKmsScenarios } from "./kms-fixtures.js";

registerKmsScenarios(EMULATOR, ROTATION_SCENARIOS);
