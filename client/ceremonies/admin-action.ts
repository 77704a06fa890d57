// MFA for admin actions, the client's side: one touch per command, whatever the number of its writes.
//   1. The command names every admin write it will make, each as its method path and the digest of its
//      request bytes (adminActionFor), before it makes any.
//   2. UserService.CreateAuthenticateChallenge{ADMIN_ACTION, those actions} → WebAuthn request options, or
//      mfa_required false (the cluster does not enforce MFA for admin actions, or the caller is exempt).
//   3. A security key answers: one touch.
//   4. The writes go with that answer (ClusterApi.withAdminMfa), each request exactly as named: the cluster
//      accepts the answer once for each named call within a short time, and for nothing else.
import { ChallengeScope } from '../../proto/gen/keyport/v1/mfa';
import type { AdminAction } from '../../proto/gen/keyport/v1/user';
import type { AdminMfaApi, ClusterApi } from '../api';
import { answerChallenge, closeKeysAhead } from './mfa';
import type { MfaContext } from './mfa';

export { adminActionFor } from '../api';

/** The admin services to make `actions` with: carrying a touch's answer where the cluster asks for one. */
export async function authorizeAdminActions(
  api: ClusterApi,
  actions: AdminAction[],
  context: Omit<MfaContext, 'preference'>,
): Promise<AdminMfaApi> {
  const challenge = await api.user.createAuthenticateChallenge({
    scope: ChallengeScope.CHALLENGE_SCOPE_ADMIN_ACTION,
    adminActions: actions,
  });
  if (!challenge.mfaRequired) {
    if (context.keys) await closeKeysAhead(context.keys);
    return api;
  }
  // Only a security key answers an admin action (the seed enforces it where WebAuthn is the only factor).
  const response = await answerChallenge(challenge, { ...context, preference: 'key' });
  return api.withAdminMfa(response);
}
