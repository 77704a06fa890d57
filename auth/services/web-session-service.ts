// WebSessionService: Keyport Connect's side of the web-session approval ceremony (auth/web-approval.ts
// holds the steps). Every call needs a client certificate; the caller must be the web session's user. Each
// step and each refusal is audited (`web.approval`), never with a token.
import { KeyportError } from '../../proto/errors';
import type {
  ApproveWebSessionRequest,
  BeginWebSessionApprovalRequest,
  GetWebSessionApprovalRequest,
  WebSessionApproval,
  WebSessionApprovalChallenge,
  WebSessionConfirmation,
} from '../../proto/gen/keyport/v1/web_session';
import type { ServiceContext } from '../context';
import { authenticate } from '../identity';
import type { CallContext } from '../rpc';
import { ApprovalRefusal, approve, beginApproval, describeApproval } from '../web-approval';

export function webSessionService(ctx: ServiceContext) {
  /** Runs a step as the caller, auditing its refusal (the reason, the request id; never a token). */
  async function step<T>(
    call: CallContext,
    what: string,
    id: string,
    run: (user: string) => Promise<T>,
    success?: (result: T) => { message: string; fields: Record<string, unknown> },
  ): Promise<T> {
    const identity = await authenticate(ctx, call);
    try {
      const result = await run(identity.user);
      if (success) {
        const { message, fields } = success(result);
        await ctx.audit.record({
          type: 'web.approval',
          actor: identity,
          clientAddr: call.clientAddr,
          success: true,
          message,
          fields: { request_id: id, ...fields },
        });
      }
      return result;
    } catch (error) {
      if (error instanceof KeyportError) {
        await ctx.audit.record({
          type: 'web.approval',
          actor: identity,
          clientAddr: call.clientAddr,
          success: false,
          message: `web session approval refused (${what}): ${error instanceof ApprovalRefusal ? error.reason : error.message}`,
          fields: { request_id: id.slice(0, 64), step: what },
        });
      }
      throw error;
    }
  }

  return {
    async getWebSessionApproval(
      request: GetWebSessionApprovalRequest,
      call: CallContext,
    ): Promise<WebSessionApproval> {
      const view = await step(call, 'read', request.id, (user) =>
        describeApproval(ctx, user, request.id, request.token),
      );
      return {
        cluster: view.cluster,
        user: view.user,
        browserAddr: view.browserAddr,
        userAgent: view.userAgent,
        code: view.code,
        expiresMs: view.expiresMs,
      };
    },

    async beginWebSessionApproval(
      request: BeginWebSessionApprovalRequest,
      call: CallContext,
    ): Promise<WebSessionApprovalChallenge> {
      const begun = await step(call, 'begin', request.id, (user) => beginApproval(ctx, user, request));
      return { challengeId: begun.challengeId, nonce: begun.nonce, expiresMs: begun.expiresMs };
    },

    async approveWebSession(
      request: ApproveWebSessionRequest,
      call: CallContext,
    ): Promise<WebSessionConfirmation> {
      const webOrigin = ctx.webOrigin;
      if (!webOrigin) {
        throw new KeyportError('PRECONDITION_FAILED', 'This auth service serves no web UI (--web-listen).');
      }
      const approved = await step(
        call,
        'approve',
        request.id,
        (user) => approve(ctx, user, request, webOrigin),
        (result) => ({
          message: `web session approved by device ${result.assetTag}; waiting for the browser's confirmation`,
          fields: { web_session_id: result.webSessionId, device_id: result.deviceId },
        }),
      );
      return {
        confirmationToken: approved.confirmationToken,
        expiresMs: approved.expiresMs,
        confirmUrl: approved.confirmUrl,
        deviceId: approved.deviceId,
        assetTag: approved.assetTag,
      };
    },
  };
}
