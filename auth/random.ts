// Random bytes for the ids, nonces and serials a call makes (a challenge and its id, a certificate's serial,
// an SSH certificate's nonce), from a pool that node:crypto's CSPRNG refills 4 KiB at a time. A login took
// five synchronous trips into OpenSSL for 3–12 µs each under load; now about one in a hundred logins takes
// one. Each byte is handed out once, copied out and then zeroed in the pool, so no two callers ever share
// bytes and a later read of the pool shows none that were handed out. The pool is this process's own (Node
// never forks a running process). Larger requests go straight to randomBytes.
import { randomBytes, randomFillSync } from 'node:crypto';

const POOL_SIZE = 4096;
const MAX_POOLED = 64;

const pool = Buffer.alloc(POOL_SIZE);
let offset = POOL_SIZE;

/** `n` bytes from the CSPRNG, as randomBytes(n) gives them. */
export function randomPooled(n: number): Buffer {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`cannot take ${n} random bytes`);
  if (n > MAX_POOLED) return randomBytes(n);
  if (offset + n > POOL_SIZE) {
    randomFillSync(pool);
    offset = 0;
  }
  const taken = Buffer.from(pool.subarray(offset, offset + n));
  pool.fill(0, offset, offset + n);
  offset += n;
  return taken;
}
