// Key pairs made by OpenSSL in the native core (src/crypto/signatures.ts generateKeyPair), the
// emulator's C_GenerateKeyPair source: the requested size, exponent and curve, keys that sign and
// verify with node:crypto, and refusals for what OpenSSL cannot make.
import test from "ava";
import { createHash, sign, verify } from "node:crypto";
import { generateKeyPair } from "../../src/crypto/signatures.js";

test("RSA: the modulus length and public exponent asked for; the keys sign and verify", (t) => {
  const { privateKey, publicKey } = generateKeyPair({ kind: "rsa", modulusBits: 2048, publicExponent: 3n });
  t.is(privateKey.type, "private");
  t.is(publicKey.asymmetricKeyDetails?.modulusLength, 2048);
  t.is(publicKey.asymmetricKeyDetails?.publicExponent, 3n);
  const signature = sign("sha256", Buffer.from("message"), privateKey);
  t.true(verify("sha256", Buffer.from("message"), publicKey, signature));
  t.is(generateKeyPair({ kind: "rsa", modulusBits: 1024 }).publicKey.asymmetricKeyDetails?.publicExponent, 65537n, "65537 by default");
});

test("EC on each curve the emulator offers, and Ed25519", (t) => {
  for (const [curve, named] of [["prime256v1", "prime256v1"], ["secp384r1", "secp384r1"], ["secp521r1", "secp521r1"]] as const) {
    const { privateKey, publicKey } = generateKeyPair({ kind: "ec", curve });
    t.is(publicKey.asymmetricKeyDetails?.namedCurve, named);
    const digest = createHash("sha256").update("m").digest();
    t.true(verify(null, digest, publicKey, sign(null, digest, privateKey)), curve);
  }
  const ed = generateKeyPair({ kind: "ed25519" });
  t.is(ed.publicKey.asymmetricKeyType, "ed25519");
  t.true(verify(null, Buffer.from("m"), ed.publicKey, sign(null, Buffer.from("m"), ed.privateKey)));
});

test("what OpenSSL cannot make is refused, not crashed on", (t) => {
  t.throws(() => generateKeyPair({ kind: "ec", curve: "no-such-curve" }), { message: /no-such-curve/ });
  t.throws(() => generateKeyPair({ kind: "rsa", modulusBits: 100 }));
});
