/**
 * BigInt arithmetic for the few computations node:crypto (OpenSSL) does not expose:
 *
 * - completing an RSA private key from (n, e, d) on C_CreateObject — factoring n as NIST
 *   SP 800-56B Rev. 2 Appendix C.2 describes — and its CRT values;
 * - raw ECDSA (CKM_ECDSA, FIPS 186-5 §6.4) over a caller's hash, which node:crypto cannot do
 *   because it always hashes the input itself.
 *
 * ECDSA signing takes the nonce point k·G from OpenSSL (node's ECDH scalar multiplication, which
 * is constant-time) and blinds the scalar step, s = (b·k)⁻¹ · (b·e + b·r·d) mod n with a fresh
 * random b, so that the non-constant-time BigInt operations only ever see masked values. The
 * private scalar still passes through a BigInt, which cannot be wiped: a software token's
 * limitation, stated here rather than hidden. Verification handles public values only.
 */
import { createECDH } from "node:crypto";

export function bytesToBigInt(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt("0x" + Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("hex"));
}

/** Big-endian bytes of `value` (≥ 0): minimal (at least one byte), or exactly `length` bytes. */
export function bigIntToBytes(value: bigint, length?: number): Buffer {
  if (value < 0n) throw new RangeError("negative integer");
  let hex = value.toString(16);
  if (hex.length % 2 === 1) hex = "0" + hex;
  const raw = Buffer.from(hex, "hex");
  if (length === undefined) return raw;
  if (raw.length > length) throw new RangeError(`integer does not fit in ${length} bytes`);
  return Buffer.concat([Buffer.alloc(length - raw.length), raw]);
}

export function mod(a: bigint, m: bigint): bigint {
  const r = a % m;
  return r < 0n ? r + m : r;
}

export function modPow(base: bigint, exponent: bigint, m: bigint): bigint {
  let result = 1n;
  let b = mod(base, m);
  let e = exponent;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % m;
    b = (b * b) % m;
    e >>= 1n;
  }
  return result;
}

export function gcd(a: bigint, b: bigint): bigint {
  let x = a < 0n ? -a : a;
  let y = b < 0n ? -b : b;
  while (y !== 0n) [x, y] = [y, x % y];
  return x;
}

/** a⁻¹ mod m; throws RangeError when gcd(a, m) ≠ 1. */
export function modInverse(a: bigint, m: bigint): bigint {
  let [oldR, r] = [mod(a, m), m];
  let [oldS, s] = [1n, 0n];
  while (r !== 0n) {
    const q = oldR / r;
    [oldR, r] = [r, oldR - q * r];
    [oldS, s] = [s, oldS - q * s];
  }
  if (oldR !== 1n) throw new RangeError("not invertible");
  return mod(oldS, m);
}

// RSA

/**
 * The primes of n from a key pair's exponents (SP 800-56B Rev. 2 Appendix C.2), or undefined when
 * (e, d) is not a key pair for n. Bases 2, 3, 5, … are tried in turn; each succeeds with
 * probability at least 1/2.
 */
export function rsaFactor(n: bigint, e: bigint, d: bigint): { p: bigint; q: bigint } | undefined {
  const k = d * e - 1n;
  if (k <= 0n || k % 2n !== 0n) return undefined;
  let r = k;
  let t = 0;
  while (r % 2n === 0n) {
    r /= 2n;
    t++;
  }
  const bases = [2n, 3n, 5n, 7n, 11n, 13n, 17n, 19n, 23n, 29n, 31n, 37n, 41n, 43n, 47n, 53n, 59n, 61n, 67n, 71n];
  for (const g of bases) {
    let y = modPow(g, r, n);
    if (y === 1n || y === n - 1n) continue;
    for (let j = 1; j <= t; j++) {
      const x = (y * y) % n;
      if (x === 1n) {
        const p = gcd(y - 1n, n);
        if (p === 1n || p === n) return undefined;
        return { p, q: n / p };
      }
      if (x === n - 1n) break;
      y = x;
    }
  }
  return undefined;
}

export interface RsaCrt {
  dp: bigint;
  dq: bigint;
  qi: bigint;
}

/** The CRT values of a private key (RFC 8017 §3.2). */
export function rsaCrt(d: bigint, p: bigint, q: bigint): RsaCrt {
  return { dp: d % (p - 1n), dq: d % (q - 1n), qi: modInverse(q, p) };
}

/** λ(n) = lcm(p − 1, q − 1). */
export function carmichael(p: bigint, q: bigint): bigint {
  return ((p - 1n) * (q - 1n)) / gcd(p - 1n, q - 1n);
}

// Elliptic curves (short Weierstrass, a = −3: the NIST prime curves of FIPS 186-5 / SP 800-186 §3.2.1)

interface CurveArith {
  /** node:crypto's ECDH name. */
  nodeName: string;
  p: bigint;
  n: bigint;
  /** Bits of n: hashes are truncated to this many leftmost bits (FIPS 186-5 §6.4.1 step 3). */
  orderBits: number;
  /** Bytes of r and s in a signature (ceil(orderBits / 8)). */
  scalarBytes: number;
  /** Bytes of a field element in a point encoding. */
  fieldBytes: number;
  g?: Point;
}

const CURVE_ARITH = new Map<string, CurveArith>(
  ([
    ["prime256v1", 2n ** 256n - 2n ** 224n + 2n ** 192n + 2n ** 96n - 1n,
      0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n, 256, 32],
    ["secp384r1", 2n ** 384n - 2n ** 128n - 2n ** 96n + 2n ** 32n - 1n,
      0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n, 384, 48],
    ["secp521r1", 2n ** 521n - 1n,
      0x1fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409n, 521, 66],
  ] as const).map(([nodeName, p, n, orderBits, fieldBytes]) => [nodeName, { nodeName, p, n, orderBits, scalarBytes: Math.ceil(orderBits / 8), fieldBytes }]),
);

function curve(nodeName: string): CurveArith {
  const c = CURVE_ARITH.get(nodeName);
  if (c === undefined) throw new Error(`no arithmetic for curve ${nodeName}`);
  return c;
}

/** Affine point; null is the point at infinity. */
export type Point = { x: bigint; y: bigint } | null;
type Jacobian = { x: bigint; y: bigint; z: bigint };

const INFINITY: Jacobian = { x: 1n, y: 1n, z: 0n };

/** Uncompressed 04‖x‖y from OpenSSL, as a point. */
function pointFromUncompressed(c: CurveArith, encoded: Buffer): Point {
  if (encoded.length !== 1 + 2 * c.fieldBytes || encoded[0] !== 0x04) throw new Error("not an uncompressed point");
  return { x: bytesToBigInt(encoded.subarray(1, 1 + c.fieldBytes)), y: bytesToBigInt(encoded.subarray(1 + c.fieldBytes)) };
}

/** k·G by OpenSSL (constant-time). 1 ≤ k < n. */
function baseMultiply(c: CurveArith, k: bigint): Point {
  const ecdh = createECDH(c.nodeName);
  ecdh.setPrivateKey(bigIntToBytes(k, c.fieldBytes));
  return pointFromUncompressed(c, ecdh.getPublicKey());
}

/** The generator, from OpenSSL (1·G), so only p and n are written here. */
export function generator(nodeName: string): Point {
  const c = curve(nodeName);
  c.g ??= baseMultiply(c, 1n);
  return c.g;
}

function double(c: CurveArith, P: Jacobian): Jacobian {
  const p = c.p;
  if (P.z === 0n || P.y === 0n) return INFINITY;
  // dbl-2001-b (a = −3)
  const delta = (P.z * P.z) % p;
  const gamma = (P.y * P.y) % p;
  const beta = (P.x * gamma) % p;
  const alpha = mod(3n * (P.x - delta) * (P.x + delta), p);
  const x = mod(alpha * alpha - 8n * beta, p);
  const z = mod((P.y + P.z) ** 2n - gamma - delta, p);
  const y = mod(alpha * (4n * beta - x) - 8n * gamma * gamma, p);
  return { x, y, z };
}

function add(c: CurveArith, P: Jacobian, Q: Jacobian): Jacobian {
  const p = c.p;
  if (P.z === 0n) return Q;
  if (Q.z === 0n) return P;
  const z1z1 = (P.z * P.z) % p;
  const z2z2 = (Q.z * Q.z) % p;
  const u1 = (P.x * z2z2) % p;
  const u2 = (Q.x * z1z1) % p;
  const s1 = (P.y * Q.z * z2z2) % p;
  const s2 = (Q.y * P.z * z1z1) % p;
  const h = mod(u2 - u1, p);
  const r = mod(s2 - s1, p);
  if (h === 0n) return r === 0n ? double(c, P) : INFINITY;
  const h2 = (h * h) % p;
  const h3 = (h * h2) % p;
  const u1h2 = (u1 * h2) % p;
  const x = mod(r * r - h3 - 2n * u1h2, p);
  const y = mod(r * (u1h2 - x) - s1 * h3, p);
  const z = (P.z * Q.z * h) % p;
  return { x, y, z };
}

function toJacobian(P: Point): Jacobian {
  return P === null ? INFINITY : { x: P.x, y: P.y, z: 1n };
}

function toAffine(c: CurveArith, P: Jacobian): Point {
  if (P.z === 0n) return null;
  const zInverse = modInverse(P.z, c.p);
  const z2 = (zInverse * zInverse) % c.p;
  return { x: (P.x * z2) % c.p, y: (P.y * z2 * zInverse) % c.p };
}

/** k·P for public values only (variable time). */
export function multiply(nodeName: string, k: bigint, P: Point): Point {
  const c = curve(nodeName);
  let result = INFINITY;
  const base = toJacobian(P);
  for (let i = k.toString(2).length - 1; i >= 0; i--) {
    result = double(c, result);
    if ((k >> BigInt(i)) & 1n) result = add(c, result, base);
  }
  return toAffine(c, result);
}

/** FIPS 186-5 §6.4.1 step 3 / §6.4.2 step 3: the hash as an integer, its leftmost orderBits bits. */
function hashToInteger(c: CurveArith, hash: Uint8Array): bigint {
  const e = bytesToBigInt(hash);
  const excess = hash.length * 8 - c.orderBits;
  return excess > 0 ? e >> BigInt(excess) : e;
}

/** A uniform scalar in [1, n − 1] from `random` (extra 128 bits make the bias negligible). */
function randomScalar(c: CurveArith, random: (length: number) => Buffer): bigint {
  return (bytesToBigInt(random(c.scalarBytes + 16)) % (c.n - 1n)) + 1n;
}

/**
 * An ECDSA signature r‖s (each scalarBytes, big-endian) of `hash` under private scalar `d`
 * (1 ≤ d < n), FIPS 186-5 §6.4.1 with the hash supplied. `random` supplies the nonce and blind.
 */
export function ecdsaSignHash(nodeName: string, d: bigint, hash: Uint8Array, random: (length: number) => Buffer): Buffer {
  const c = curve(nodeName);
  const n = c.n;
  const e = hashToInteger(c, hash);
  for (;;) {
    const k = randomScalar(c, random);
    const R = baseMultiply(c, k);
    if (R === null) continue;
    const r = R.x % n;
    if (r === 0n) continue;
    const b = randomScalar(c, random);
    const blindedInverse = modInverse((b * k) % n, n);
    const s = (blindedInverse * ((b * e + ((b * r) % n) * d) % n)) % n;
    if (s === 0n) continue;
    return Buffer.concat([bigIntToBytes(r, c.scalarBytes), bigIntToBytes(s, c.scalarBytes)]);
  }
}

/** Whether r‖s is an ECDSA signature of `hash` under public point Q (FIPS 186-5 §6.4.2). */
export function ecdsaVerifyHash(nodeName: string, Q: Point, hash: Uint8Array, signature: Uint8Array): boolean {
  const c = curve(nodeName);
  const n = c.n;
  if (Q === null || signature.length !== 2 * c.scalarBytes) return false;
  const r = bytesToBigInt(signature.subarray(0, c.scalarBytes));
  const s = bytesToBigInt(signature.subarray(c.scalarBytes));
  if (r < 1n || r >= n || s < 1n || s >= n) return false;
  const e = hashToInteger(c, hash);
  const w = modInverse(s, n);
  const u1 = (e * w) % n;
  const u2 = (r * w) % n;
  const X = add(c, toJacobian(multiply(nodeName, u1, generator(nodeName))), toJacobian(multiply(nodeName, u2, Q)));
  const affine = toAffine(c, X);
  return affine !== null && affine.x % n === r;
}

/** The curve order n (for range checks of imported private scalars). */
export function curveOrder(nodeName: string): bigint {
  return curve(nodeName).n;
}
