// node:crypto's one-shot sign and verify on libuv's thread pool: the event loop serves other calls while a
// certificate is signed or an assertion verified (a login's three such operations).
import { sign, verify } from 'node:crypto';
import { promisify } from 'node:util';

export const signInPool = promisify(sign);
export const verifyInPool = promisify(verify);
