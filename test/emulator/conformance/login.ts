/**
 * The login state machine: PKCS#11 v2.40 §5.6.7 C_Login, §5.6.8 C_Logout, §5.5.7–5.5.9
 * C_InitToken, C_InitPIN, C_SetPIN, the PIN flags of CK_TOKEN_INFO, and the context-specific
 * login that keys with CKA_ALWAYS_AUTHENTICATE (§4.9) ask for.
 */
import { byTarget, CKS, expectRv, offers, openSession, P, userSession, type Scenario } from "./scenario.js";

export const LOGIN_SCENARIOS: Scenario[] = [
  {
    area: "login",
    title: "a second login of the same user is CKR_USER_ALREADY_LOGGED_IN (user and SO)",
    run(t, token) {
      const { p11 } = token;
      const s = openSession(token);
      const other = openSession(token);
      p11.C_Login(s, P.CKU_USER, token.userPin);
      expectRv(t, () => p11.C_Login(s, P.CKU_USER, token.userPin), P.CKR_USER_ALREADY_LOGGED_IN, "same session");
      expectRv(t, () => p11.C_Login(other, P.CKU_USER, token.userPin), P.CKR_USER_ALREADY_LOGGED_IN, "login is per token, not per session");
      p11.C_Logout(s);
      p11.C_Login(s, P.CKU_SO, token.soPin);
      expectRv(t, () => p11.C_Login(other, P.CKU_SO, token.soPin), P.CKR_USER_ALREADY_LOGGED_IN, "SO");
    },
  },
  {
    area: "login",
    title: "the user while the SO is logged in, or the SO while the user is, is CKR_USER_ANOTHER_ALREADY_LOGGED_IN",
    run(t, token) {
      const { p11 } = token;
      const s = openSession(token);
      p11.C_Login(s, P.CKU_SO, token.soPin);
      expectRv(t, () => p11.C_Login(s, P.CKU_USER, token.userPin), P.CKR_USER_ANOTHER_ALREADY_LOGGED_IN, "user after SO");
      p11.C_Logout(s);
      p11.C_Login(s, P.CKU_USER, token.userPin);
      expectRv(t, () => p11.C_Login(s, P.CKU_SO, token.soPin), P.CKR_USER_ANOTHER_ALREADY_LOGGED_IN, "SO after user");
    },
  },
  {
    area: "login",
    title: "the SO cannot log in beside a read-only session (CKR_SESSION_READ_ONLY_EXISTS) nor open one while logged in (CKR_SESSION_READ_WRITE_SO_EXISTS)",
    run(t, token) {
      const { p11 } = token;
      const rw = openSession(token, true);
      const ro = openSession(token, false);
      expectRv(t, () => p11.C_Login(rw, P.CKU_SO, token.soPin), P.CKR_SESSION_READ_ONLY_EXISTS);
      p11.C_CloseSession(ro);
      p11.C_Login(rw, P.CKU_SO, token.soPin);
      expectRv(t, () => openSession(token, false), P.CKR_SESSION_READ_WRITE_SO_EXISTS);
      const rw2 = openSession(token, true);
      t.is(p11.C_GetSessionInfo(rw2).state, CKS.RW_SO);
    },
  },
  {
    area: "login",
    title: "a wrong PIN is CKR_PIN_INCORRECT and raises CKF_USER_PIN_COUNT_LOW; a good login clears it",
    run(t, token) {
      const { p11 } = token;
      const s = openSession(token);
      expectRv(t, () => p11.C_Login(s, P.CKU_USER, token.userPin + "9"), P.CKR_PIN_INCORRECT);
      t.is(p11.C_GetSessionInfo(s).state, CKS.RW_PUBLIC, "a failed login changes nothing");
      const flags = p11.C_GetTokenInfo(token.slot).flags;
      t.truthy(flags & P.CKF_USER_PIN_COUNT_LOW, "CKF_USER_PIN_COUNT_LOW after a wrong PIN");
      t.falsy(flags & P.CKF_USER_PIN_LOCKED);
      t.falsy(flags & P.CKF_SO_PIN_COUNT_LOW, "the SO's counter is separate");
      p11.C_Login(s, P.CKU_USER, token.userPin);
      t.falsy(p11.C_GetTokenInfo(token.slot).flags & P.CKF_USER_PIN_COUNT_LOW, "cleared by a successful login");
      p11.C_Logout(s);
      expectRv(t, () => p11.C_Login(s, P.CKU_SO, "87654321"), P.CKR_PIN_INCORRECT, "SO");
      t.truthy(p11.C_GetTokenInfo(token.slot).flags & P.CKF_SO_PIN_COUNT_LOW, "CKF_SO_PIN_COUNT_LOW after a wrong SO PIN");
    },
  },
  {
    area: "login",
    title: "ten wrong user PINs in a row: the emulator locks the PIN (CKR_PIN_LOCKED), SoftHSMv2 never does",
    run(t, token) {
      const { p11 } = token;
      const s = openSession(token);
      const locks = byTarget(t, token, { emulator: true, softhsm: false },
        "How many wrong PINs a token tolerates is the token's choice (§5.6.7 lists CKR_PIN_LOCKED; CK_TOKEN_INFO has CKF_USER_PIN_FINAL_TRY / _LOCKED). " +
        "The emulator locks after 10 consecutive failures, raising CKF_USER_PIN_FINAL_TRY before the last; SoftHSMv2 only ever raises CKF_USER_PIN_COUNT_LOW.");
      for (let attempt = 1; attempt <= 9; attempt++) expectRv(t, () => p11.C_Login(s, P.CKU_USER, "00000000"), P.CKR_PIN_INCORRECT, `wrong PIN ${attempt}`);
      t.is(Boolean(p11.C_GetTokenInfo(token.slot).flags & P.CKF_USER_PIN_FINAL_TRY), locks, "CKF_USER_PIN_FINAL_TRY after nine");
      expectRv(t, () => p11.C_Login(s, P.CKU_USER, "00000000"), locks ? P.CKR_PIN_LOCKED : P.CKR_PIN_INCORRECT, "the tenth");
      t.is(Boolean(p11.C_GetTokenInfo(token.slot).flags & P.CKF_USER_PIN_LOCKED), locks, "CKF_USER_PIN_LOCKED");
      if (locks) expectRv(t, () => p11.C_Login(s, P.CKU_USER, token.userPin), P.CKR_PIN_LOCKED, "even the right PIN");
      else p11.C_Login(s, P.CKU_USER, token.userPin);
    },
  },
  {
    area: "login",
    title: "a PIN shorter than the minimum is CKR_PIN_INCORRECT at login",
    run(t, token) {
      const s = openSession(token);
      expectRv(t, () => token.p11.C_Login(s, P.CKU_USER, "12"), P.CKR_PIN_INCORRECT);
    },
  },
  {
    area: "login",
    title: "C_Logout with nobody logged in: CKR_USER_NOT_LOGGED_IN (SoftHSMv2: CKR_OK)",
    run(t, token) {
      const s = openSession(token);
      const expected = byTarget(t, token, { emulator: P.CKR_USER_NOT_LOGGED_IN, softhsm: P.CKR_OK }, "§5.6.8 lists CKR_USER_NOT_LOGGED_IN among C_Logout's results, and with nobody logged in it is the one that fits; the emulator returns it. SoftHSMv2 2.6.1 returns CKR_OK whatever the login state (SoftHSM.cpp C_Logout does not check it).");
      if (expected === P.CKR_OK) token.p11.C_Logout(s);
      else expectRv(t, () => token.p11.C_Logout(s), expected);
      t.is(token.p11.C_GetSessionInfo(s).state, CKS.RW_PUBLIC);
    },
  },
  {
    area: "login",
    title: "CKU_CONTEXT_SPECIFIC with nothing to re-authenticate is CKR_OPERATION_NOT_INITIALIZED; an unknown user type is CKR_USER_TYPE_INVALID",
    run(t, token) {
      const s = openSession(token);
      token.p11.C_Login(s, P.CKU_USER, token.userPin);
      expectRv(t, () => token.p11.C_Login(s, P.CKU_CONTEXT_SPECIFIC, token.userPin), P.CKR_OPERATION_NOT_INITIALIZED);
      token.p11.C_Logout(s);
      expectRv(t, () => token.p11.C_Login(s, 7, token.userPin), P.CKR_USER_TYPE_INVALID);
    },
  },
  {
    area: "login",
    title: "after C_InitToken the user PIN is not initialized (CKR_USER_PIN_NOT_INITIALIZED) until the SO's C_InitPIN",
    run(t, token) {
      const { p11 } = token;
      p11.C_InitToken(token.slot, token.soPin, "reinitialized");
      const info = p11.C_GetTokenInfo(token.slot);
      t.truthy(info.flags & P.CKF_TOKEN_INITIALIZED);
      t.falsy(info.flags & P.CKF_USER_PIN_INITIALIZED);
      t.is(info.label.replace(/[\0 ]+$/u, ""), "reinitialized");
      const s = openSession(token);
      expectRv(t, () => p11.C_Login(s, P.CKU_USER, token.userPin), P.CKR_USER_PIN_NOT_INITIALIZED);
      expectRv(t, () => p11.C_InitPIN(s, "24681357"), P.CKR_USER_NOT_LOGGED_IN, "C_InitPIN needs the SO");
      p11.C_Login(s, P.CKU_SO, token.soPin);
      p11.C_InitPIN(s, "24681357");
      t.truthy(p11.C_GetTokenInfo(token.slot).flags & P.CKF_USER_PIN_INITIALIZED);
      p11.C_Logout(s);
      expectRv(t, () => p11.C_Login(s, P.CKU_USER, token.userPin), P.CKR_PIN_INCORRECT, "the old user PIN is gone");
      p11.C_Login(s, P.CKU_USER, "24681357");
      t.is(p11.C_GetSessionInfo(s).state, CKS.RW_USER);
    },
  },
  {
    area: "login",
    title: "C_InitToken refuses a wrong SO PIN (CKR_PIN_INCORRECT) and an open session (CKR_SESSION_EXISTS)",
    run(t, token) {
      const { p11 } = token;
      expectRv(t, () => p11.C_InitToken(token.slot, "00000000", "x"), P.CKR_PIN_INCORRECT);
      const s = openSession(token);
      expectRv(t, () => p11.C_InitToken(token.slot, token.soPin, "x"), P.CKR_SESSION_EXISTS);
      p11.C_CloseSession(s);
    },
  },
  {
    area: "login",
    title: "C_SetPIN changes the user's PIN from an R/W session; R/O is CKR_SESSION_READ_ONLY, a wrong old PIN CKR_PIN_INCORRECT",
    run(t, token) {
      const { p11 } = token;
      const ro = openSession(token, false);
      expectRv(t, () => p11.C_SetPIN(ro, token.userPin, "13572468"), P.CKR_SESSION_READ_ONLY);
      p11.C_CloseSession(ro);
      const rw = openSession(token, true);
      p11.C_Login(rw, P.CKU_USER, token.userPin);
      expectRv(t, () => p11.C_SetPIN(rw, "99999999", "13572468"), P.CKR_PIN_INCORRECT);
      p11.C_SetPIN(rw, token.userPin, "13572468");
      p11.C_Logout(rw);
      expectRv(t, () => p11.C_Login(rw, P.CKU_USER, token.userPin), P.CKR_PIN_INCORRECT);
      p11.C_Login(rw, P.CKU_USER, "13572468");
      t.is(p11.C_GetSessionInfo(rw).state, CKS.RW_USER);
    },
  },
  {
    area: "login",
    title: "C_InitPIN is for the SO in an R/W session: the user gets CKR_USER_NOT_LOGGED_IN",
    run(t, token) {
      const { p11 } = token;
      const s = openSession(token, true);
      p11.C_Login(s, P.CKU_USER, token.userPin);
      expectRv(t, () => p11.C_InitPIN(s, "11112222"), P.CKR_USER_NOT_LOGGED_IN);
    },
  },
  {
    area: "login",
    title: "a CKA_ALWAYS_AUTHENTICATE key signs and decrypts only after C_Login(CKU_CONTEXT_SPECIFIC): before it, CKR_USER_NOT_LOGGED_IN ends the operation",
    run(t, token) {
      if (!offers(t, token, P.CKM_RSA_PKCS_KEY_PAIR_GEN, P.CKM_SHA256_RSA_PKCS, P.CKM_RSA_PKCS_OAEP)) return;
      const { p11 } = token;
      const s = userSession(token);
      const { publicKey, privateKey } = p11.C_GenerateKeyPair(s, { mechanism: P.CKM_RSA_PKCS_KEY_PAIR_GEN }, [
        { type: P.CKA_MODULUS_BITS, value: 2048 }, { type: P.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
      ], [{ type: P.CKA_ALWAYS_AUTHENTICATE, value: true }]);
      const sha256Rsa = { mechanism: P.CKM_SHA256_RSA_PKCS };
      const message = Buffer.from("sign me once per PIN");

      p11.C_SignInit(s, sha256Rsa, privateKey);
      expectRv(t, () => p11.C_Sign(s, message, Buffer.alloc(256)), P.CKR_USER_NOT_LOGGED_IN, "C_Sign without the PIN again");
      expectRv(t, () => p11.C_Sign(s, message, Buffer.alloc(256)), P.CKR_OPERATION_NOT_INITIALIZED, "that ended the operation");
      p11.C_SignInit(s, sha256Rsa, privateKey);
      expectRv(t, () => p11.C_SignUpdate(s, message), P.CKR_USER_NOT_LOGGED_IN, "C_SignUpdate likewise");
      expectRv(t, () => p11.C_SignFinal(s, Buffer.alloc(256)), P.CKR_OPERATION_NOT_INITIALIZED);

      p11.C_SignInit(s, sha256Rsa, privateKey);
      expectRv(t, () => p11.C_Login(s, P.CKU_CONTEXT_SPECIFIC, "99999999"), P.CKR_PIN_INCORRECT, "a wrong PIN");
      expectRv(t, () => p11.C_Sign(s, message, Buffer.alloc(256)), P.CKR_USER_NOT_LOGGED_IN, "a wrong PIN authenticates nothing");

      p11.C_SignInit(s, sha256Rsa, privateKey);
      const other = openSession(token);
      expectRv(t, () => p11.C_Login(other, P.CKU_CONTEXT_SPECIFIC, token.userPin), P.CKR_OPERATION_NOT_INITIALIZED, "another session has no such operation");
      p11.C_Login(s, P.CKU_CONTEXT_SPECIFIC, token.userPin);
      expectRv(t, () => p11.C_Login(s, P.CKU_CONTEXT_SPECIFIC, token.userPin), P.CKR_OPERATION_NOT_INITIALIZED, "once per operation");
      const signature = p11.C_Sign(s, message, Buffer.alloc(256));
      p11.C_VerifyInit(s, sha256Rsa, publicKey);
      t.true(p11.C_Verify(s, message, signature), "the public key needs no PIN");

      const oaep = { mechanism: P.CKM_RSA_PKCS_OAEP, parameter: { type: P.CK_PARAMS_RSA_OAEP, hashAlg: P.CKM_SHA_1, mgf: P.CKG_MGF1_SHA1, source: 1 } };
      p11.C_EncryptInit(s, oaep, publicKey);
      const encrypted = p11.C_Encrypt(s, message, Buffer.alloc(256));
      p11.C_DecryptInit(s, oaep, privateKey);
      expectRv(t, () => p11.C_Decrypt(s, encrypted, Buffer.alloc(256)), P.CKR_USER_NOT_LOGGED_IN, "C_Decrypt without the PIN again");
      p11.C_DecryptInit(s, oaep, privateKey);
      p11.C_Login(s, P.CKU_CONTEXT_SPECIFIC, token.userPin);
      t.deepEqual(p11.C_Decrypt(s, encrypted, Buffer.alloc(256)), message);
    },
  },
  {
    area: "login",
    title: "no PIN at all is CKR_ARGUMENTS_BAD at C_Login, C_InitToken, C_InitPIN and C_SetPIN, and no wrong PIN: nothing is counted, nothing locks",
    skip: { softhsm: "pkcs11js throws a TypeError for a missing PIN before SoftHSMv2 sees the call (SoftHSMv2 itself answers a NULL_PTR PIN with CKR_ARGUMENTS_BAD)" },
    run(t, token) {
      const { p11 } = token;
      const countLow = (): number => p11.C_GetTokenInfo(token.slot).flags & (P.CKF_USER_PIN_COUNT_LOW | P.CKF_SO_PIN_COUNT_LOW);
      const absent = null as unknown as string;
      const s = openSession(token);
      for (let i = 0; i < 12; i++) {
        expectRv(t, () => p11.C_Login(s, P.CKU_USER), P.CKR_ARGUMENTS_BAD, "C_Login without a PIN");
        expectRv(t, () => p11.C_Login(s, P.CKU_SO, absent), P.CKR_ARGUMENTS_BAD, "C_Login with a null PIN");
      }
      expectRv(t, () => p11.C_SetPIN(s, absent, "13572468"), P.CKR_ARGUMENTS_BAD, "C_SetPIN without the old PIN");
      expectRv(t, () => p11.C_SetPIN(s, token.userPin, absent), P.CKR_ARGUMENTS_BAD, "C_SetPIN without the new PIN");
      t.is(countLow(), 0, "no attempt was counted");
      p11.C_Login(s, P.CKU_USER, token.userPin);
      t.is(p11.C_GetSessionInfo(s).state, CKS.RW_USER, "the user PIN is not locked");
      p11.C_Logout(s);
      p11.C_Login(s, P.CKU_SO, token.soPin);
      expectRv(t, () => p11.C_InitPIN(s), P.CKR_ARGUMENTS_BAD, "C_InitPIN without a PIN");
      p11.C_Logout(s);
      p11.C_CloseSession(s);
      expectRv(t, () => p11.C_InitToken(token.slot, undefined, "no pin"), P.CKR_ARGUMENTS_BAD, "C_InitToken without the SO PIN");
      t.is(countLow(), 0);
      const after = openSession(token);
      p11.C_Login(after, P.CKU_USER, token.userPin);
      t.is(p11.C_GetSessionInfo(after).state, CKS.RW_USER, "the token was not re-initialized");
    },
  },
];
