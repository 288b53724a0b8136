// The conformance scenarios (./index.ts) against SoftHSMv2 through pkcs11js: a fresh token per
// test (test/helpers/softhsm.ts), serially, since SoftHSMv2 is one library per process. Without
// SoftHSMv2 every scenario is registered as skipped, with the reason in its title.
import test from "ava";
import { freshSoftHsmToken, SOFTHSM } from "../../helpers/softhsm.js";
import { scenarioName, SCENARIOS } from "./index.js";
import type { TokenUnderTest } from "./scenario.js";

for (const scenario of SCENARIOS) {
  const name = scenarioName(scenario); // ava prefixes the file: "emulator › conformance › softhsm › …"
  const reason = SOFTHSM.missing ?? scenario.skip?.softhsm;
  if (reason !== undefined) {
    test.skip(`${name} — skipped: ${reason}`, () => {});
    continue;
  }
  test.serial(name, async (t) => {
    const fresh = freshSoftHsmToken(t);
    const token: TokenUnderTest = {
      target: "softhsm", p11: fresh.p11, slot: fresh.slot, label: fresh.label, soPin: fresh.soPin, userPin: fresh.userPin,
      mechanisms: new Set(fresh.p11.C_GetMechanismList(fresh.slot)),
    };
    await scenario.run(t, token);
  });
}
