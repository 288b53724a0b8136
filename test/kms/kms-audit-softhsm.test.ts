// The audit trail through the Kms on SoftHSMv2 (scenarios in ./kms-audit-scenarios.ts);
// skipped, with the reason in each title, when SoftHSMv2 is not installed.
import { SOFTHSM_FIXTURE } from "./backend-fixtures.js";
import { AUDIT_SCENARIOS } from "./kms-audit-scenarios.js";
import { registerKmsScenarios } from "./kms-fixtures.js";

registerKmsScenarios(SOFTHSM_FIXTURE, AUDIT_SCENARIOS);
