/**
 * Random number generation, PKCS#11 v2.40 §5.15: C_GenerateRandom, C_SeedRandom.
 */
import { byTarget, expectRv, openSession, P, rvName, type Scenario } from "./scenario.js";

export const RANDOM_SCENARIOS: Scenario[] = [
  {
    area: "random",
    title: "C_GenerateRandom fills the caller's Buffer, with different bytes each time; C_SeedRandom is accepted",
    run(t, token) {
      const { p11 } = token;
      const s = openSession(token, false);
      const a = p11.C_GenerateRandom(s, Buffer.alloc(64));
      const b = p11.C_GenerateRandom(s, Buffer.alloc(64));
      t.is(a.length, 64);
      t.false(a.equals(b));
      t.false(a.equals(Buffer.alloc(64)));
      t.is(p11.C_GenerateRandom(s, Buffer.alloc(1)).length, 1);
      t.is(p11.C_GenerateRandom(s, Buffer.alloc(4096)).length, 4096);
      p11.C_SeedRandom(s, Buffer.from("caller entropy"));
      t.is(p11.C_GenerateRandom(s, Buffer.alloc(32)).length, 32);
    },
  },
  {
    area: "random",
    title: "C_GenerateRandom needs a session (CKR_SESSION_HANDLE_INVALID after close); an empty Buffer differs by marshalling",
    run(t, token) {
      const { p11 } = token;
      const s = openSession(token, false);
      let emptyRv = P.CKR_OK;
      try {
        p11.C_GenerateRandom(s, Buffer.alloc(0));
      } catch (error) {
        emptyRv = (error as { code: number }).code;
      }
      t.is(rvName(emptyRv), rvName(byTarget(t, token, { emulator: P.CKR_OK, softhsm: P.CKR_ARGUMENTS_BAD },
        "pkcs11js passes NULL for an empty Buffer and SoftHSMv2 refuses a NULL pRandomData (CKR_ARGUMENTS_BAD); the emulator has no pointer to be NULL and returns zero bytes. §5.15.2 does not forbid a zero length.")));
      p11.C_CloseSession(s);
      expectRv(t, () => p11.C_GenerateRandom(s, Buffer.alloc(8)), P.CKR_SESSION_HANDLE_INVALID);
    },
  },
];
