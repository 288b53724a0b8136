// Encryption through the Kms on SoftHSMv2 (scenarios in ./kms-crypto-scenarios.ts);
// skipped, with the reason in each title, when SoftHSMv2 is not installed.
import { SOFTHSM_FIXTURE } from "./backend-fixtures.js";
import { CRYPTO_SCENARIOS } from "./kms-crypto-scenarios.js";
import { registerKmsScenarios } from "./kms-fixtures.js";

registerKmsScenarios(SOFTHSM_FIXTURE, CRYPTO_SCENARIOS);
