// The HTTP API end to end on SoftHSMv2 (token.module = libsofthsm2.so; scenarios in
// ./helpers/scenarios.ts), serially, one fresh token per scenario; skipped, with the reason in each
// title, when SoftHSMv2 is not installed.
import { registerServerScenarios, SCENARIOS, SOFTHSM_TOKEN } from "./helpers/scenarios.js";

registerServerScenarios(SOFTHSM_TOKEN, SCENARIOS);
