/**
 * Slots, tokens and sessions: PKCS#11 v2.40 §5.5 and §5.6 (C_GetSlotList … C_GetSessionInfo,
 * C_CloseSession, C_CloseAllSessions).
 */
import { BOGUS_HANDLE, byTarget, CKS, expectRv, openSession, P, text, type Scenario } from "./scenario.js";

const CKF_TOKEN_PRESENT = (P as unknown as Record<string, number>).CKF_TOKEN_PRESENT!;
const CKF_REMOVABLE_DEVICE = (P as unknown as Record<string, number>).CKF_REMOVABLE_DEVICE!;
/** CK_UNAVAILABLE_INFORMATION as pkcs11js reads a CK_ULONG info field (32 bits). */
const UNAVAILABLE = 0xffffffff;
const SESSION_COUNT_WHY = "§3.2 lets a token report CK_TOKEN_INFO.ulSessionCount / ulRwSessionCount as CK_UNAVAILABLE_INFORMATION, which SoftHSMv2 does (pkcs11js reads the CK_ULONG as 32 bits: 0xffffffff); the emulator counts.";

export const SESSION_SCENARIOS: Scenario[] = [
  {
    area: "slots",
    title: "the slot is listed with its token present; the token is initialized with a user PIN",
    run(t, token) {
      const { p11, slot } = token;
      t.deepEqual(p11.C_GetInfo().cryptokiVersion, { major: 2, minor: 40 });
      t.true(p11.C_GetSlotList(true).some((s) => s.equals(slot)));
      t.true(p11.C_GetSlotList(false).some((s) => s.equals(slot)));
      const slotInfo = p11.C_GetSlotInfo(slot);
      t.truthy(slotInfo.flags & CKF_TOKEN_PRESENT);
      t.is(
        slotInfo.flags & CKF_REMOVABLE_DEVICE,
        byTarget(t, token, { emulator: CKF_REMOVABLE_DEVICE, softhsm: 0 },
          "the emulator's token can be pulled by a fault plan, so its slot is removable; SoftHSMv2's is not (slots.removable = false). Both are valid CK_SLOT_INFO."),
      );
      const info = p11.C_GetTokenInfo(slot);
      t.is(text(info.label), token.label);
      for (const flag of [P.CKF_TOKEN_INITIALIZED, P.CKF_USER_PIN_INITIALIZED, P.CKF_LOGIN_REQUIRED, P.CKF_RNG]) {
        t.truthy(info.flags & flag, `token flag 0x${flag.toString(16)}`);
      }
      t.falsy(info.flags & P.CKF_USER_PIN_COUNT_LOW);
      t.falsy(info.flags & P.CKF_WRITE_PROTECTED);
      t.is(info.minPinLen, 4);
      t.is(info.maxPinLen, 255);
    },
  },
  {
    area: "slots",
    title: "unknown slot and session handles are CKR_SLOT_ID_INVALID and CKR_SESSION_HANDLE_INVALID",
    run(t, token) {
      const { p11 } = token;
      expectRv(t, () => p11.C_GetSlotInfo(BOGUS_HANDLE), P.CKR_SLOT_ID_INVALID, "C_GetSlotInfo");
      expectRv(t, () => p11.C_GetTokenInfo(BOGUS_HANDLE), P.CKR_SLOT_ID_INVALID, "C_GetTokenInfo");
      expectRv(t, () => p11.C_OpenSession(BOGUS_HANDLE, P.CKF_SERIAL_SESSION), P.CKR_SLOT_ID_INVALID, "C_OpenSession");
      expectRv(t, () => p11.C_GetMechanismList(BOGUS_HANDLE), P.CKR_SLOT_ID_INVALID, "C_GetMechanismList");
      expectRv(t, () => p11.C_GetSessionInfo(BOGUS_HANDLE), P.CKR_SESSION_HANDLE_INVALID, "C_GetSessionInfo");
      expectRv(t, () => p11.C_CloseSession(BOGUS_HANDLE), P.CKR_SESSION_HANDLE_INVALID, "C_CloseSession");
      expectRv(t, () => p11.C_Login(BOGUS_HANDLE, P.CKU_USER, token.userPin), P.CKR_SESSION_HANDLE_INVALID, "C_Login");
      expectRv(t, () => p11.C_GenerateRandom(BOGUS_HANDLE, Buffer.alloc(8)), P.CKR_SESSION_HANDLE_INVALID, "C_GenerateRandom");
    },
  },
  {
    area: "sessions",
    title: "C_OpenSession without CKF_SERIAL_SESSION is CKR_SESSION_PARALLEL_NOT_SUPPORTED",
    run(t, token) {
      expectRv(t, () => token.p11.C_OpenSession(token.slot, P.CKF_RW_SESSION), P.CKR_SESSION_PARALLEL_NOT_SUPPORTED);
      expectRv(t, () => token.p11.C_OpenSession(token.slot, 0), P.CKR_SESSION_PARALLEL_NOT_SUPPORTED);
    },
  },
  {
    area: "sessions",
    title: "session info: state follows the login (RO/RW × public/user/SO), flags say serial and R/W",
    run(t, token) {
      const { p11 } = token;
      const ro = openSession(token, false);
      const rw = openSession(token, true);
      const info = (s: Buffer) => p11.C_GetSessionInfo(s);
      t.true(info(ro).slotID.equals(token.slot));
      t.is(info(ro).state, CKS.RO_PUBLIC);
      t.is(info(ro).flags, P.CKF_SERIAL_SESSION);
      t.is(info(rw).state, CKS.RW_PUBLIC);
      t.is(info(rw).flags, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
      t.is(info(rw).deviceError, 0);
      // A login is per token: it applies to every session of the application (§5.6).
      p11.C_Login(ro, P.CKU_USER, token.userPin);
      t.is(info(ro).state, CKS.RO_USER);
      t.is(info(rw).state, CKS.RW_USER);
      p11.C_Logout(rw);
      t.is(info(ro).state, CKS.RO_PUBLIC);
      t.is(info(rw).state, CKS.RW_PUBLIC);
      p11.C_CloseSession(ro);
      p11.C_Login(rw, P.CKU_SO, token.soPin);
      t.is(info(rw).state, CKS.RW_SO);
      p11.C_Logout(rw);
      p11.C_CloseSession(rw);
    },
  },
  {
    area: "sessions",
    title: "C_GetTokenInfo counts the open sessions and the R/W ones",
    run(t, token) {
      const { p11 } = token;
      const ro = openSession(token, false);
      openSession(token, true);
      openSession(token, true);
      const info = p11.C_GetTokenInfo(token.slot);
      t.is(info.sessionCount, byTarget(t, token, { emulator: 3, softhsm: UNAVAILABLE }, SESSION_COUNT_WHY));
      t.is(info.rwSessionCount, byTarget(t, token, { emulator: 2, softhsm: UNAVAILABLE }, SESSION_COUNT_WHY));
      p11.C_CloseSession(ro);
      t.is(p11.C_GetTokenInfo(token.slot).sessionCount, byTarget(t, token, { emulator: 2, softhsm: UNAVAILABLE }, SESSION_COUNT_WHY));
    },
  },
  {
    area: "sessions",
    title: "C_CloseAllSessions closes every session of the slot and ends the login",
    run(t, token) {
      const { p11 } = token;
      const a = openSession(token, true);
      const b = openSession(token, false);
      p11.C_Login(a, P.CKU_USER, token.userPin);
      p11.C_CloseAllSessions(token.slot);
      expectRv(t, () => p11.C_GetSessionInfo(a), P.CKR_SESSION_HANDLE_INVALID, "first session");
      expectRv(t, () => p11.C_GetSessionInfo(b), P.CKR_SESSION_HANDLE_INVALID, "second session");
      expectRv(t, () => p11.C_CloseSession(a), P.CKR_SESSION_HANDLE_INVALID, "closing it again");
      t.is(p11.C_GetTokenInfo(token.slot).sessionCount, byTarget(t, token, { emulator: 0, softhsm: UNAVAILABLE }, SESSION_COUNT_WHY));
      const c = openSession(token, true);
      t.is(p11.C_GetSessionInfo(c).state, CKS.RW_PUBLIC, "nobody is logged in any more");
      p11.C_CloseAllSessions(token.slot); // with one session, and …
      p11.C_CloseAllSessions(token.slot); // … with none: both fine
    },
  },
  {
    area: "sessions",
    title: "closing the last session of the token logs the application out; closing another does not",
    run(t, token) {
      const { p11 } = token;
      const a = openSession(token, true);
      const b = openSession(token, true);
      p11.C_Login(a, P.CKU_USER, token.userPin);
      p11.C_CloseSession(a);
      t.is(p11.C_GetSessionInfo(b).state, CKS.RW_USER, "still logged in while a session remains");
      p11.C_CloseSession(b);
      const c = openSession(token, true);
      t.is(p11.C_GetSessionInfo(c).state, CKS.RW_PUBLIC);
    },
  },
];
