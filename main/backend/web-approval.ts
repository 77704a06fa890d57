// The authorize screen's two steps (deepLinks.inspect, deepLinks.authorize) over the held keyport:// link:
// the link's token stays in the inbox until the approval has spent it on the cluster, and never reaches the
// renderer. A signed-out app, or one whose session expired, is told to sign in first: the request stays
// held through the sign-in (Teleport's issue #43328 was that case shown as an error).
import { approveWebSession, readWebApproval } from '../../client/device-trust/web-approval';
import type { CardSessions } from '../../client/hardware/piv/card-sessions';
import type { PivPrompts } from '../../client/hardware/piv/signer';
import type { Profile, ProfileStore } from '../../client/profiles';
import { notSignedIn } from '../../client/session';
import type { WebApprovalDone, WebApprovalView } from '../../preload/contract';
import { KeyportError } from '../../proto/errors';
import type { Clock } from '../../proto/clock';
import type { DeepLinkInbox } from './deep-link-inbox';
import type { AuthorizeWebSessionLink } from './deep-link';

/** Opens a URL in the person's default browser (Electron's shell.openExternal; xdg-open for the browser host). */
export type OpenInBrowser = (url: string) => Promise<void>;

export interface WebApprovalDeps {
  profiles: ProfileStore;
  deepLinks: DeepLinkInbox;
  env: NodeJS.ProcessEnv;
  clock: Clock;
  cards: CardSessions;
  openInBrowser: OpenInBrowser | undefined;
}

const goneRequest = () =>
  new KeyportError(
    'EXPIRED',
    'This request is no longer held (it expired, was cancelled or another link replaced it): start again from the web page.',
  );

/** Whether a failure means "sign in again" rather than a refusal of the request. */
function needsSignIn(error: unknown): boolean {
  return error instanceof KeyportError && ['UNAUTHENTICATED', 'CERTIFICATE_EXPIRED'].includes(error.code);
}

export function webApprovalSteps(deps: WebApprovalDeps) {
  /** The link's cluster's profile, unexpired on the service clock; undefined: sign in first. */
  async function profileFor(link: AuthorizeWebSessionLink): Promise<Profile | undefined> {
    const profile = await deps.profiles.getProfile(link.cluster.address);
    return profile && profile.expiresMs > deps.clock() ? profile : undefined;
  }

  const signIn = (link: AuthorizeWebSessionLink, reason: string): WebApprovalView => ({
    kind: 'signInRequired',
    cluster: { address: link.cluster.address, name: link.cluster.name },
    reason,
  });

  return {
    async inspect(id: string): Promise<WebApprovalView> {
      const link = deps.deepLinks.peek(id);
      if (!link) throw goneRequest();
      const profile = await profileFor(link);
      if (!profile) return signIn(link, `Sign in to ${link.cluster.name} to see what this browser asks.`);
      try {
        const view = await readWebApproval(deps.profiles, profile, link, {
          env: deps.env,
          cards: deps.cards,
        });
        return {
          kind: 'ready',
          cluster: { address: link.cluster.address, name: link.cluster.name },
          user: view.user,
          browserAddr: view.browserAddr,
          userAgent: view.userAgent,
          code: view.code,
          expiresMs: view.expiresMs,
        };
      } catch (error) {
        if (needsSignIn(error))
          return signIn(link, `Your session on ${link.cluster.name} has ended: sign in again.`);
        throw error;
      }
    },

    async authorize(
      id: string,
      piv: PivPrompts | undefined,
      onProgress: (step: 'reading-tpm' | 'done') => void,
    ) {
      const link = deps.deepLinks.peek(id);
      if (!link) throw goneRequest();
      const profile = await profileFor(link);
      if (!profile) throw notSignedIn(`sign in to ${link.cluster.name} first`);
      if (!deps.openInBrowser) {
        throw new KeyportError('PRECONDITION_FAILED', 'This app cannot open a browser here.');
      }
      const approved = await approveWebSession(deps.profiles, profile, link, {
        env: deps.env,
        cards: deps.cards,
        onProgress,
        ...(piv ? { piv } : {}),
      });
      // Spent on the cluster: the token goes now, whatever the browser does next.
      deps.deepLinks.take(id);
      await deps.openInBrowser(approved.confirmUrl);
      const done: WebApprovalDone = { assetTag: approved.assetTag };
      return done;
    },
  };
}
