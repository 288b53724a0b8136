// Encryption through the Kms on the emulator (scenarios in ./kms-crypto-scenarios.ts);
import { EMULATOR } from "./backend-fixtures.js";
import { CRYPTO_SCENARIOS } from "./kms-crypto-scenarios.js";
import { registerKmsScenarios } from "./kms-fixtures.js";

registerKmsScenarios(EMULATOR, CRYPTO_SCENARIOS);
