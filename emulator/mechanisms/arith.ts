/**
 * BigInt arithmetic for completing an RSA private key from (n, e, d) on C_CreateObject —
 * factoring n as NIST SP 800-56B Rev. 2 Appendix C.2 describes — and its CRT values, which
 * node:crypto needs to build the key. This is key-format conversion at import, not a signing
 * or decryption primitive: every RSA and EC operation itself runs in OpenSSL (node:crypto, or
 * the native core for ECDSA over a caller's digest). The private exponent still passes through
 * a BigInt here, which cannot be wiped — a software token's limitation, stated rather than hidden.
 */


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

// Curve orders n (FIPS 186-5 / SP 800-186 §3.2.1), to range-check imported private scalars.
const CURVE_ORDERS = new Map<string, bigint>([
  ["prime256v1", 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n],
  ["secp384r1", 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n],
  ["secp521r1", 0x1fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409n],
]);

/** The curve order n (for range checks of imported private scalars). */
export function curveOrder(nodeName: string): bigint {
  const n = CURVE_ORDERS.get(nodeName);
  if (n === undefined) throw new Error(`no order known for curve ${nodeName}`);
  return n;
}
