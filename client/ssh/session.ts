// `keyport ssh`'s ceremony, before the system ssh runs (seed "Per-session MFA"):
//   1. IsMFARequired(node, login): keyport-auth resolves the node, checks access (a clear ACCESS_DENIED or
//      NOT_FOUND otherwise) and says whether this connection needs a touch; when it does, the answer
//      carries the USER_SESSION challenge (round trip 1);
//   2. when required: "Tap any security key", then GenerateSessionCertificate with the answer: a
//      certificate for the session key, scoped to this node and login, valid for one minute, single use
//      (round trip 2). Otherwise the session's own certificate serves;
//   3. the host CA's @cert-authority line kept in KEYPORT_HOME/known_hosts.
// The key stays where it is (keychain, file keystore or card): the caller serves it through an agent.
import { userInfo } from 'node:os';
import { KeyportError } from '../../proto/errors';
import type { Node } from '../../proto/gen/keyport/v1/node';
import { answerChallenge } from '../ceremonies/mfa';
import type { MfaPrompts } from '../ceremonies/mfa';
import { parseClusterAddress } from '../cluster-trust';
import type { ProfileStore } from '../profiles';
import { connectAsProfile, notSignedIn, openProfileSigner, webauthnOrigin } from '../session';
import type { SessionSigner } from '../keystore/signer';
import type { PivPrompts } from '../hardware/piv/signer';
import { keepHostCa } from './known-hosts';

export interface SshTarget {
  login: string;
  node: string;
}

const TARGET = /^(?:([^@\s]+)@)?([^@\s]+)$/;

/** `[login@]node`; without a login, the local account's name (as ssh does). */
export function parseSshTarget(text: string, login?: string): SshTarget {
  const match = TARGET.exec(text);
  if (!match?.[2]) {
    throw new KeyportError('INVALID_ARGUMENT', `"${text}" is not [login@]node.`, {
      fieldPath: 'destination',
    });
  }
  return { node: match[2], login: login ?? match[1] ?? userInfo().username };
}

export interface PreparedSsh {
  node: Node;
  login: string;
  /** The certificate the agent offers: single use when `perSession`, else the session's own. */
  certificate: string;
  signer: SessionSigner;
  perSession: boolean;
  knownHostsFile: string;
  close(): Promise<void>;
}

export interface SshPrompts {
  mfa: MfaPrompts;
  piv?: PivPrompts;
  notice?: (message: string) => void;
}

export interface PrepareOptions {
  /** The signed-in cluster to use (its canonical address); the current profile's when omitted. */
  cluster?: string;
  /** Aborts the touch (CTAPHID CANCEL) when the person cancels. */
  signal?: AbortSignal;
}

export async function prepareSsh(
  profiles: ProfileStore,
  target: SshTarget,
  prompts: SshPrompts,
  onCall?: (method: string) => void,
  options: PrepareOptions = {},
): Promise<PreparedSsh> {
  const profile = await profiles.getProfile(options.cluster);
  if (!profile) throw notSignedIn();
  const trusted = await profiles.getTrustedCluster(parseClusterAddress(profile.address));
  const api = await connectAsProfile(profiles, profile, onCall, {
    ...(prompts.notice ? { notice: prompts.notice } : {}),
    ...(prompts.piv ? { piv: prompts.piv } : {}),
  });
  try {
    // 1. Resolve, check access, and learn whether a touch is needed.
    const check = await api.nodes.isMfaRequired({ node: target.node, login: target.login });
    if (!check.node) throw new KeyportError('INTERNAL', 'The auth service named no node.');
    let certificate = profile.sshCertificate;
    if (check.required) {
      if (!check.challenge) throw new KeyportError('INTERNAL', 'The auth service sent no MFA challenge.');
      // 2. One touch, then the single-use certificate for this node and login.
      const mfaResponse = await answerChallenge(check.challenge, {
        origin: trusted ? webauthnOrigin(trusted) : `https://${profile.address}`,
        prompts: prompts.mfa,
        preference: 'key',
        ...(options.signal ? { signal: options.signal } : {}),
      });
      certificate = (
        await api.nodes.generateSessionCertificate({ node: target.node, login: target.login, mfaResponse })
      ).sshCertificate;
    }
    // 3. The host CA, for verifying the node's host certificate.
    const knownHostsFile = await keepHostCa(profiles.home, profile.address, check.hostCaPublicKey);
    const card = openProfileSigner(profiles, profile, prompts.piv);
    return {
      node: check.node,
      login: target.login,
      certificate,
      signer: card.signer,
      perSession: check.required,
      knownHostsFile,
      close: () => card.close(),
    };
  } finally {
    api.close();
  }
}
