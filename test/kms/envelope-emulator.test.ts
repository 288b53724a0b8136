// Blob v1 through the backend on the emulator (scenarios in ./envelope-scenarios.ts).
import { EMULATOR } from "./backend-fixtures.js";
import { registerEnvelopeScenarios } from "./envelope-scenarios.js";

registerEnvelopeScenarios(EMULATOR);
