// Keyport Connect's SSO login ("Sign in with DISPLAY"): the connectors a cluster lists, and the login
// through one of them, which is the client core's ceremony (client/ceremonies/sso-login.ts) with the app's
// prompts:
//   1. the cluster trusted as for every login (the trustCaPin prompt on first use);
//   2. the session key and a loopback listener; StartSSOLogin → the IdP's authorization URL;
//   3. that URL checked (https, no user info) and opened in the system browser by the host's opener
//      (Electron's shell.openExternal, the browser host's xdg-open, a test's page), with a browserSignIn
//      prompt meanwhile: its Cancel aborts the ceremony's signal, which ends the wait and closes the
//      loopback listener (CANCELLED, nothing saved);
//   4. the browser back at the loopback address; RedeemSSOLogin; the profile, as every login saves it.
// The renderer gets the connectors' names and displays and the profile's view; never the URL (its state is
// the callback's credential) or anything of the certificates.
import { loginWithSso } from '../../client/ceremonies/sso-login';
import { parseClusterAddress } from '../../client/cluster-trust';
import type { KeyStoreKind } from '../../client/keystore';
import type { Profile, ProfileStore } from '../../client/profiles';
import { connectReplica } from '../../client/replicas';
import type { ConnectorView } from '../../preload/contract';
import { KeyportError } from '../../proto/errors';
import type { CeremonyPrompts } from './prompt-broker';
import type { OpenInBrowser } from './web-approval';

const MAX_SIGN_IN_URL_LENGTH = 8 * 1024;
/** What the login screen shows at most: more buttons than this would be a cluster gone wrong. */
const MAX_CONNECTORS = 32;

/**
 * The IdP's authorization URL as the opener gets it, or a refusal: https only (the issuer is https, and the
 * URL carries the request's state and PKCE challenge), no user info (`https://idp@evil.example`), bounded.
 * The normalised href is returned, never the raw string.
 */
export function signInUrl(raw: string): string {
  let url: URL | undefined;
  try {
    url = raw.length <= MAX_SIGN_IN_URL_LENGTH ? new URL(raw) : undefined;
  } catch {
    url = undefined;
  }
  if (!url || url.protocol !== 'https:' || url.username !== '' || url.password !== '') {
    throw new KeyportError(
      'PRECONDITION_FAILED',
      "The cluster gave a sign-in address that is not an https URL, so it was not opened. Ask your administrator to check the connector's issuer_url.",
    );
  }
  return url.href;
}

export interface SsoLoginDeps {
  profiles: ProfileStore;
  keystoreKind: KeyStoreKind;
  /** The host's way to the system browser; undefined where the host has none. */
  openInBrowser: OpenInBrowser | undefined;
  /** The app's environment: this machine's TPM for device trust (KEYPORT_TPM_TCTI), as its local login. */
  env: NodeJS.ProcessEnv;
}

export function ssoLoginSteps(deps: SsoLoginDeps) {
  const { profiles } = deps;
  /** The displays last listed per cluster, so the waiting prompt names the connector as its button did. */
  const displays = new Map<string, Map<string, string>>();

  const steps = {
    /** The SSO connectors the trusted cluster lists now; none for a cluster not trusted yet. */
    async connectors(address: string): Promise<ConnectorView[]> {
      const trusted = await profiles.getTrustedCluster(parseClusterAddress(address));
      if (!trusted) return [];
      const api = await connectReplica(trusted);
      try {
        const info = await api.auth.getClusterInfo({});
        const views = info.authConnectors
          .filter((connector) => connector.type === 'oidc' && connector.name !== '')
          .slice(0, MAX_CONNECTORS)
          // Field by field: a field added to AuthConnector later does not reach the renderer.
          .map((connector) => ({ name: connector.name, display: connector.display || connector.name }));
        displays.set(trusted.address, new Map(views.map((view) => [view.name, view.display])));
        return views;
      } finally {
        api.close();
      }
    },

    /** The connector's display, as its button shows it (the name where the cluster does not list it). */
    async display(address: string, connector: string): Promise<string> {
      const key = parseClusterAddress(address);
      const trusted = await profiles.getTrustedCluster(key);
      const known = trusted && displays.get(trusted.address)?.get(connector);
      if (known) return known;
      const listed = await steps.connectors(address).catch(() => []);
      return listed.find((view) => view.name === connector)?.display ?? connector;
    },

    /**
     * Step 3: the IdP's URL checked and opened by the host's opener, with the browserSignIn prompt meanwhile
     * (the login's and a relogin's).
     */
    opener(prompts: CeremonyPrompts, request: { address: string; connector: string }) {
      const address = parseClusterAddress(request.address);
      const open = deps.openInBrowser;
      if (!open) {
        throw new KeyportError('PRECONDITION_FAILED', 'This app cannot open a browser for single sign-on.');
      }
      return async (raw: string) => {
        const url = signInUrl(raw);
        const trusted = await profiles.getTrustedCluster(address);
        const key = trusted?.address ?? request.address;
        prompts.browserSignIn({
          cluster: trusted?.name ?? request.address,
          connector: displays.get(key)?.get(request.connector) ?? request.connector,
        });
        await open(url);
      };
    },

    async login(
      prompts: CeremonyPrompts,
      request: { address: string; connector: string; ttlSeconds?: number },
    ): Promise<Profile> {
      const openBrowser = steps.opener(prompts, request);
      return loginWithSso({
        profiles,
        address: parseClusterAddress(request.address),
        keystore: deps.keystoreKind,
        connector: request.connector,
        ...(request.ttlSeconds !== undefined ? { ttlSeconds: request.ttlSeconds } : {}),
        signal: prompts.signal,
        // Device trust and a connector's require_local_mfa, as the app's local login has them.
        device: { env: deps.env },
        prompts: {
          confirmCaPin: prompts.confirmCaPin,
          notice: prompts.notice,
          openBrowser,
          securityKey: prompts.securityKey,
        },
      });
    },
  };
  return steps;
}

export type SsoLoginSteps = ReturnType<typeof ssoLoginSteps>;
