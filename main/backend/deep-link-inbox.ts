// The keyport:// request on hold: the one link the app received last, kept in the backend for the screen it
// fills in. Its token never leaves this module except through take(), which hands it out once, to the
// ceremony that screen will run; the renderer sees the request's view only. A request lives `ttlMs` on the
// service clock (proto/clock: the lab clock in tests) and goes as soon as another link arrives, refused
// ones included, or the person cancels it.
import type { DeepLinkEvent, DeepLinkRequest } from '../../preload/contract';
import type { Clock } from '../../proto/clock';
import { parseDeepLink } from './deep-link';
import type { AuthorizeWebSessionLink, DeepLink, KnownCluster } from './deep-link';
import { toContractError } from './views';

/** How long a received link stays usable: time to read the screen and sign in again first, no more. */
export const DEEP_LINK_TTL_MS = 5 * 60_000;

interface Held {
  link: DeepLink;
  receivedMs: number;
}

export class DeepLinkInbox {
  private held: Held | undefined;
  private readonly clock: Clock;
  private readonly ttlMs: number;

  constructor(options: { clock: Clock; ttlMs?: number }) {
    this.clock = options.clock;
    this.ttlMs = options.ttlMs ?? DEEP_LINK_TTL_MS;
  }

  /** Holds `link` in place of whatever was held, and returns its view. */
  receive(link: DeepLink): DeepLinkRequest {
    this.held = { link, receivedMs: this.clock() };
    return this.view(this.held);
  }

  /** A link arrived that was refused: the request held before it is dropped too. */
  drop(): void {
    this.held = undefined;
  }

  /** The view of the request on hold, or null (none, or expired: then it is dropped). */
  current(): DeepLinkRequest | null {
    const held = this.live();
    return held ? this.view(held) : null;
  }

  /** Cancel: drops the request with this id; another request (a newer link) stays. */
  dismiss(id: string): boolean {
    if (this.held?.link.id !== id) return false;
    this.held = undefined;
    return true;
  }

  /**
   * The held link with this id, token included, once: for the ceremony its screen runs. Undefined when it
   * was taken, dismissed, replaced or has expired.
   */
  take(id: string): AuthorizeWebSessionLink | undefined {
    const held = this.live();
    if (held?.link.id !== id) return undefined;
    this.held = undefined;
    return held.link;
  }

  /**
   * The held link with this id, token included, left held: for the ceremony's steps before the one that
   * spends the token (the screen's read, an Authorize that failed and may be tried again after a sign-in).
   */
  peek(id: string): AuthorizeWebSessionLink | undefined {
    const held = this.live();
    return held?.link.id === id ? held.link : undefined;
  }

  private live(): Held | undefined {
    if (this.held && this.clock() >= this.held.receivedMs + this.ttlMs) this.held = undefined;
    return this.held;
  }

  private view({ link, receivedMs }: Held): DeepLinkRequest {
    return {
      kind: 'authorizeWebSession',
      cluster: { address: link.cluster.address, name: link.cluster.name },
      id: link.id,
      receivedMs,
      expiresMs: receivedMs + this.ttlMs,
    };
  }
}

/**
 * A link from a host, parsed against the trusted clusters: a request is held (replacing the one before) and
 * its view returned; a refused link drops what was held and returns why. Throws nothing. The link's text
 * is never logged or returned: it may carry a token.
 */
export async function receiveDeepLink(
  text: unknown,
  inbox: DeepLinkInbox,
  trustedClusters: () => Promise<readonly KnownCluster[]>,
): Promise<DeepLinkEvent> {
  try {
    return inbox.receive(parseDeepLink(text, await trustedClusters()));
  } catch (error) {
    inbox.drop();
    return { kind: 'refused', error: toContractError(error) };
  }
}
