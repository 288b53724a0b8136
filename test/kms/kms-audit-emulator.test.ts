// The audit trail through the Kms on the emulator (scenarios in ./kms-audit-scenarios.ts);
import { EMULATOR } from "./backend-fixtures.js";
import { AUDIT_SCENARIOS } from "./kms-audit-scenarios.js";
import { registerKmsScenarios } from "./kms-fixtures.js";

registerKmsScenarios(EMULATOR, AUDIT_SCENARIOS);
