// Whether 65 bytes are an uncompressed point of NIST P-256 (SEC 1 v2 §2.3.4, the check of §3.2.2.1):
// 0x04 ‖ X ‖ Y with X and Y below the field prime p and y² = x³ − 3x + b (mod p), the curve's parameters
// from SEC 2 v2 §2.4.2 (FIPS 186-4 D.1.2.3). P-256's cofactor is 1, so a point on the curve is in the group
// of prime order n, and the point at infinity has no uncompressed encoding: that is the whole of a public
// key's validation. A public key is public, so constant time is not needed.
const P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
const B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn;
const COORDINATE = 32;

const bigIntOf = (bytes: Uint8Array) => BigInt(`0x${Buffer.from(bytes).toString('hex')}`);

export function isP256Point(point: Uint8Array): boolean {
  if (point.length !== 1 + 2 * COORDINATE || point[0] !== 0x04) return false;
  const x = bigIntOf(point.subarray(1, 1 + COORDINATE));
  const y = bigIntOf(point.subarray(1 + COORDINATE));
  if (x >= P || y >= P) return false;
  // x³ − 3x + b = (x² − 3)·x + b, reduced into [0, p).
  const right = (((((x * x - 3n) % P) * x + B) % P) + P) % P;
  return (y * y) % P === right;
}
