// Durability of the Kms under SIGKILL on SoftHSMv2 (the scenario is in ./kms-durability-scenarios.ts);
// skipped, with the reason in its title, when SoftHSMv2 is not installed.
import { SOFTHSM_FIXTURE } from "./backend-fixtures.js";
import { registerDurability } from "./kms-durability-scenarios.js";

registerDurability(SOFTHSM_FIXTURE);
