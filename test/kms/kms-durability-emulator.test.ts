// Durability of the Kms under SIGKILL on the emulator (the scenario is in ./kms-durability-scenarios.ts);
import { EMULATOR } from "./backend-fixtures.js";
import { registerDurability } from "./kms-durability-scenarios.js";

registerDurability(EMULATOR);
