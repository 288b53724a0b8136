// The conformance scenarios (./index.ts) against the emulator: a fresh Emulator per test, with
// an initialized token (SO and user PIN), C_Initialize'd, nobody logged in.
import test from "ava";
import { Emulator } from "../../../emulator/index.js";
import { scenarioName, SCENARIOS } from "./index.js";
import type { TokenUnderTest } from "./scenario.js";

const LABEL = "hsmkit-conformance";
const SO_PIN = "12345678";
const USER_PIN = "123456";
/** A cheap scrypt cost: these tests log in hundreds of times; PIN-derived-key strength is not what they check. */
const TEST_KDF = { N: 1 << 4, r: 1, p: 1 };

for (const scenario of SCENARIOS) {
  const name = scenarioName(scenario); // ava prefixes the file: "emulator › conformance › emulator › …"
  const reason = scenario.skip?.emulator;
  if (reason !== undefined) {
    test.skip(`${name} — skipped: ${reason}`, () => {});
    continue;
  }
  test(name, async (t) => {
    const emulator = new Emulator({ slots: [{ token: { label: LABEL, soPin: SO_PIN, userPin: USER_PIN } }], kdf: TEST_KDF });
    emulator.C_Initialize();
    t.teardown(() => emulator.C_Finalize());
    const slot = emulator.C_GetSlotList(true)[0]!;
    const token: TokenUnderTest = {
      target: "emulator", p11: emulator, slot, label: LABEL, soPin: SO_PIN, userPin: USER_PIN,
      mechanisms: new Set(emulator.C_GetMechanismList(slot)),
    };
    await scenario.run(t, token);
  });
}
