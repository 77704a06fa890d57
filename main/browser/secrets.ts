// The browser host's two secrets (docs/architecture.md "Two desktop hosts, one backend"):
//   - launch tokens: in the URL fragment of the window the host opens; valid once, for a short time;
//   - sessions: what a spent launch token becomes. The bridge keeps one in the tab's sessionStorage and
//     presents it as a WebSocket subprotocol; it is never a cookie (see request-checks.ts for why). A
//     session lives a fixed time (no idle extension), authorises one open socket at a time, and ends
//     early when the host revokes its sessions or closes.
// Both are 32 random bytes in base64url. Only their SHA-256 digests are kept (invariant 5: tokens stored
// hashed), and a presented value is compared against every stored digest with timingSafeEqual, without
// an early exit, so the time taken says nothing about how close a guess came.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const SECRET_BYTES = 32;
/** base64url of 32 bytes, without padding. */
const SECRET_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export function newSecret(): string {
  return randomBytes(SECRET_BYTES).toString('base64url');
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/** Whether `presented` has the shape of a secret; anything else is refused before any comparison. */
export function looksLikeSecret(presented: unknown): presented is string {
  return typeof presented === 'string' && SECRET_PATTERN.test(presented);
}

/** The stored digest equal to `presented`'s, comparing all of them in constant time each. */
function findDigest(stored: Iterable<Buffer>, presented: string): Buffer | undefined {
  const candidate = digest(presented);
  let found: Buffer | undefined;
  for (const entry of stored) if (timingSafeEqual(entry, candidate) && !found) found = entry;
  return found;
}

export interface LaunchTokenOptions {
  ttlMs: number;
  now?: () => number;
}

/** One-time launch tokens: `issue` one per window opened, `consume` spends it (once, before it expires). */
export class LaunchTokens {
  private readonly expiries = new Map<Buffer, number>();
  private readonly now: () => number;

  constructor(private readonly options: LaunchTokenOptions) {
    this.now = options.now ?? Date.now;
  }

  issue(): string {
    this.prune();
    const token = newSecret();
    this.expiries.set(digest(token), this.now() + this.options.ttlMs);
    return token;
  }

  /** True once for a token issued here and not expired; the token is spent either way it matched. */
  consume(presented: unknown): boolean {
    if (!looksLikeSecret(presented)) return false;
    const found = findDigest(this.expiries.keys(), presented);
    if (!found) return false;
    const expiresAt = this.expiries.get(found) ?? 0;
    this.expiries.delete(found);
    return this.now() < expiresAt;
  }

  /** Tokens issued and neither spent nor pruned (expired ones go at the next issue). */
  get size(): number {
    return this.expiries.size;
  }

  clear(): void {
    this.expiries.clear();
  }

  private prune(): void {
    const now = this.now();
    for (const [key, expiresAt] of this.expiries) if (now >= expiresAt) this.expiries.delete(key);
  }
}

export interface SessionOptions {
  /** A session's whole lifetime, from its issue; using it does not extend it. */
  ttlMs: number;
  now?: () => number;
}

/** One issued session, as the bridge server holds it: what its one open socket is keyed by. */
export interface Session {
  readonly expiresAt: number;
}

interface SessionRecord extends Session {
  revoked: boolean;
}

/** Sessions issued for spent launch tokens, one per window opened; each ends at its expiry or revocation. */
export class Sessions {
  private readonly records = new Map<Buffer, SessionRecord>();
  private readonly now: () => number;

  constructor(private readonly options: SessionOptions) {
    this.now = options.now ?? Date.now;
  }

  issue(): string {
    this.prune();
    const session = newSecret();
    this.records.set(digest(session), { expiresAt: this.now() + this.options.ttlMs, revoked: false });
    return session;
  }

  /** The session `presented` names, when this host issued it and it is neither expired nor revoked. */
  find(presented: unknown): Session | undefined {
    if (!looksLikeSecret(presented)) return undefined;
    const found = findDigest(this.records.keys(), presented);
    const record = found && this.records.get(found);
    if (!found || !record) return undefined;
    if (this.isLive(record)) return record;
    this.records.delete(found);
    return undefined;
  }

  has(presented: unknown): boolean {
    return this.find(presented) !== undefined;
  }

  /** Whether a session found earlier still authorises anything. */
  isLive(session: Session): boolean {
    return !(session as SessionRecord).revoked && this.now() < session.expiresAt;
  }

  /** Milliseconds until `session` expires (0 once it has). */
  remainingMs(session: Session): number {
    return Math.max(0, session.expiresAt - this.now());
  }

  /** Sessions issued and neither revoked nor pruned (expired ones go at the next issue or lookup). */
  get size(): number {
    return this.records.size;
  }

  /** Ends every session issued so far; sessions found earlier stop being live. */
  revokeAll(): void {
    for (const record of this.records.values()) record.revoked = true;
    this.records.clear();
  }

  private prune(): void {
    const now = this.now();
    for (const [key, record] of this.records) if (now >= record.expiresAt) this.records.delete(key);
  }
}
