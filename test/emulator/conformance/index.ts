/**
 * Every conformance scenario, in the order the drivers register them. Written once against the
 * pkcs11js surface; run by emulator.test.ts (the emulator) and softhsm.test.ts (SoftHSMv2).
 */
import { ATTRIBUTE_SCENARIOS } from "./attributes.js";
import { CHECK_VALUE_SCENARIOS } from "./check-value.js";
import { COPY_SCENARIOS } from "./copy.js";
import { FAMILY_SCENARIOS } from "./families.js";
import { LOGIN_SCENARIOS } from "./login.js";
import { MECHANISM_SCENARIOS } from "./mechanisms.js";
import { MULTIPART_SCENARIOS } from "./multipart.js";
import { OBJECT_SCENARIOS } from "./objects.js";
import { RANDOM_SCENARIOS } from "./random.js";
import type { Scenario } from "./scenario.js";
import { SESSION_SCENARIOS } from "./sessions.js";
import { WRAP_SCENARIOS } from "./wrap.js";

export const SCENARIOS: readonly Scenario[] = [
  ...SESSION_SCENARIOS,
  ...LOGIN_SCENARIOS,
  ...OBJECT_SCENARIOS,
  ...ATTRIBUTE_SCENARIOS,
  ...COPY_SCENARIOS,
  ...CHECK_VALUE_SCENARIOS,
  ...MECHANISM_SCENARIOS,
  ...MULTIPART_SCENARIOS,
  ...WRAP_SCENARIOS,
  ...RANDOM_SCENARIOS,
  ...FAMILY_SCENARIOS,
];

/** "area › title", the name both drivers give a scenario's test. */
export function scenarioName(scenario: Scenario): string {
  return `${scenario.area} › ${scenario.title}`;
}
