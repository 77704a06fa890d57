// The web UI's login step two (auth/web/api.ts): the same challenge, answer, lockout and audit as the gRPC
// login (login-answer.ts), ending in a web session (auth/web-sessions.ts) instead of certificates. Step one
// is login-service's createAuthenticateChallenge itself.
import { KeyportError } from '../../proto/errors';
import type { MFAAuthenticateResponse } from '../../proto/gen/keyport/v1/mfa';
import { requiredKeyPolicy } from '../../proto/resources/private-key-policy';
import { sessionIdentityOf } from '../certificates';
import type { ServiceContext } from '../context';
import { clearFailures } from '../lockout';
import { loginAnswers } from '../login-answer';
import { perfSteps } from '../perf';
import type { CallContext } from '../rpc';
import { createWebSession, webSessionStarted } from '../web-sessions';
import type { WebSession } from '../web-sessions';

export function webLoginHandlers(ctx: ServiceContext) {
  const { spendAndVerify, rolesOf } = loginAnswers(ctx);

  return {
    /**
     * Login step two for the web UI (auth/web/): the same challenge, answer, lockout and audit as `login`,
     * ending in a web session instead of certificates.
     */
    async webLogin(
      request: { challengeId: string; answer: MFAAuthenticateResponse['response']; userAgent: string },
      call: CallContext,
      origins: readonly string[],
    ): Promise<{ token: string; session: WebSession }> {
      const perf = perfSteps('server.webLogin');
      // 1–2. The challenge from step one, spent; the answer checked, a security key's on the web UI's origin.
      const { cap, verified, refuse, address } = await spendAndVerify(
        request.challengeId,
        request.answer,
        call,
        { origins },
      );
      perf.step('spend challenge, cap, second factor / passkey');
      // 3. A browser holds no session key, so it cannot meet a private-key policy: such a user signs in
      //    with `keyport login` and the card, not on the web UI.
      const roles = verified.roles ?? (await rolesOf(verified.user));
      const required = requiredKeyPolicy(cap, roles);
      perf.step('roles, key policy');
      if (required !== 'none') {
        return refuse(
          `private key policy "${required}": no web session`,
          new KeyportError(
            'PRIVATE_KEY_POLICY_NOT_MET',
            `Your roles require a hardware key (${required}) for every session; the web UI cannot hold one. Sign in with "keyport login" and your hardware key instead.`,
            { privateKeyPolicy: required },
          ),
        );
      }
      // 4. The identity this login earned, its length capped as its certificates' would be.
      const identity = await sessionIdentityOf(ctx, verified.user, {
        mfaVerified: verified.mfaVerified,
        roles,
      });
      perf.step('session identity');
      const created = await createWebSession(ctx, identity, {
        loginMethod: verified.method,
        clientAddr: address,
        userAgent: request.userAgent,
      });
      perf.step('create web session');
      // 5. The address's failures are forgiven; the login and the session are audited in one statement.
      await clearFailures(ctx, identity.user, address, verified.failuresRecorded);
      perf.step('clear failures');
      await ctx.audit.recordAll([
        {
          type: 'user.login',
          actor: identity.user,
          clientAddr: call.clientAddr,
          success: true,
          message: `${verified.method} (web)`,
        },
        webSessionStarted(identity, created.session, call.clientAddr),
      ]);
      perf.step('audit');
      perf.end();
      return created;
    },
  };
}
