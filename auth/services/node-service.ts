// NodeAccessService (signed-in users: nodes they may reach, per-session MFA and its certificate) and
// NodeService (keyport-node, with a node's own identity: may this certificate log in here). Refusals are
// typed errors and audited.
import { KeyportError } from '../../proto/errors';
import type {
  AuthorizeConnectionRequest,
  AuthorizeConnectionResponse,
  GenerateSessionCertificateRequest,
  GenerateSessionCertificateResponse,
  IsMFARequiredRequest,
  IsMFARequiredResponse,
  ListNodesResponse,
  Node as NodeMessage,
} from '../../proto/gen/keyport/v1/node';
import type { Traits } from '../../proto/resources/presets';
import type { Node } from '../../proto/resources/schema';
import { ssoAuditFields } from '../audit';
import type { AuditActor } from '../audit';
import type { ServiceContext } from '../context';
import { authenticate, authenticateNode } from '../identity';
import type { Identity } from '../identity';
import { loadCap } from '../policy';
import type { CallContext } from '../rpc';
import { nodeLogins, nodeTarget } from '../nodes/access';
import { authorizeConnection } from '../nodes/connection';
import type { OfferedBy } from '../nodes/connection';
import { getNode, hostCaLine, listNodes } from '../nodes/registry';
import {
  checkDeviceTrust,
  checkLogin,
  createSessionChallenge,
  issueSessionCertificate,
  mfaRequiredFor,
  verifySessionAnswer,
} from '../nodes/session-certificate';

function nodeMessage(node: Node): NodeMessage {
  return {
    name: node.metadata.name,
    addr: node.spec.addr,
    labels: { ...node.metadata.labels },
    subKind: node.sub_kind,
  };
}

function requireField(value: string, field: string): void {
  if (!value) throw new KeyportError('INVALID_ARGUMENT', `${field} is required.`, { fieldPath: field });
}

/** What a refused call asked, for its audit event: named fields only (never the request, which may carry an
 * MFA answer). */
interface Refusal {
  type: 'session.certificate' | 'session.connect';
  actor: AuditActor | string;
  clientAddr: string;
  node: string;
  login: string;
  /** Read when the refusal is audited (the node's: what the check learnt of the certificate by then). */
  fields?: () => Record<string, unknown>;
}

/** Runs `work`; a typed refusal from it is audited as `login@node refused: …` with its code, then thrown on. */
async function auditRefusals<T>(ctx: ServiceContext, refusal: Refusal, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof KeyportError) {
      const { type, actor, clientAddr, node, login, fields } = refusal;
      await ctx.audit.record({
        type,
        actor,
        clientAddr,
        success: false,
        message: `${login}@${node} refused: ${error.message}`,
        fields: { node, login, ...fields?.(), code: error.code },
      });
    }
    throw error;
  }
}

export function nodeAccessService(ctx: ServiceContext) {
  async function traitsOf(identity: Identity): Promise<Traits> {
    const user = await ctx.store.getUser(identity.user);
    return (user ? (JSON.parse(user.spec_json) as { traits?: Traits }).traits : undefined) ?? {};
  }

  /** Refusals of the per-session path, audited with the node and login asked. */
  function audited<T>(
    identity: Identity,
    call: CallContext,
    { node, login }: { node: string; login: string },
    work: () => Promise<T>,
  ): Promise<T> {
    const refusal: Refusal = {
      type: 'session.certificate',
      actor: identity,
      clientAddr: call.clientAddr,
      node,
      login,
    };
    return auditRefusals(ctx, refusal, work);
  }

  return {
    async listNodes(_request: unknown, call: CallContext): Promise<ListNodesResponse> {
      const identity = await authenticate(ctx, call);
      const traits = await traitsOf(identity);
      const nodes = await listNodes(ctx.store);
      return {
        nodes: nodes.flatMap((node) => {
          const logins = nodeLogins(identity.roleDocuments, traits, nodeTarget(node));
          return logins.length > 0 ? [{ node: nodeMessage(node), logins }] : [];
        }),
      };
    },

    async isMfaRequired(request: IsMFARequiredRequest, call: CallContext): Promise<IsMFARequiredResponse> {
      requireField(request.node, 'node');
      requireField(request.login, 'login');
      const identity = await authenticate(ctx, call);
      return audited(identity, call, request, async () => {
        const [node, traits, cap] = await Promise.all([
          getNode(ctx.store, request.node),
          traitsOf(identity),
          loadCap(ctx.store),
        ]);
        checkLogin(identity, traits, node, request.login);
        checkDeviceTrust(cap, identity, node);
        const required = mfaRequiredFor(cap, identity, node);
        return {
          required,
          node: nodeMessage(node),
          hostCaPublicKey: hostCaLine(ctx),
          ...(required
            ? {
                challenge: await createSessionChallenge(ctx, cap, identity.user, request.node, request.login),
              }
            : {}),
        };
      });
    },

    async generateSessionCertificate(
      request: GenerateSessionCertificateRequest,
      call: CallContext,
    ): Promise<GenerateSessionCertificateResponse> {
      requireField(request.node, 'node');
      requireField(request.login, 'login');
      const identity = await authenticate(ctx, call);
      return audited(identity, call, request, async () => {
        const [node, traits, cap] = await Promise.all([
          getNode(ctx.store, request.node),
          traitsOf(identity),
          loadCap(ctx.store),
        ]);
        // The touch first (it spends the challenge), then access again: roles may have changed since.
        await verifySessionAnswer(
          ctx,
          cap,
          identity,
          request.node,
          request.login,
          request.mfaResponse,
          call.clientAddr,
        );
        checkLogin(identity, traits, node, request.login);
        checkDeviceTrust(cap, identity, node);
        const issued = await issueSessionCertificate(ctx, identity, request.node, request.login);
        await ctx.audit.record({
          type: 'session.certificate',
          actor: identity,
          clientAddr: call.clientAddr,
          success: true,
          message: `single-use certificate for ${request.login}@${request.node}`,
          fields: { node: request.node, login: request.login, serial: issued.serial.toString() },
        });
        return { sshCertificate: issued.sshCertificate, expiresMs: issued.expiresMs };
      });
    },
  };
}

export function nodeService(ctx: ServiceContext) {
  return {
    async authorizeConnection(
      request: AuthorizeConnectionRequest,
      call: CallContext,
    ): Promise<AuthorizeConnectionResponse> {
      const node = await authenticateNode(ctx, call);
      // Whose certificate was offered, once the check has read it: a refusal names that user (and an SSO
      // user's connector and IdP subject), not only the node that asked.
      const offered: OfferedBy = {};
      const refusal: Refusal = {
        type: 'session.connect',
        actor: `node:${node}`,
        clientAddr: call.clientAddr,
        node,
        login: request.login,
        fields: () => ({
          connection: request.connection,
          ...(offered.user === undefined ? {} : { user: offered.user }),
          ...ssoAuditFields(offered),
        }),
      };
      return auditRefusals(ctx, refusal, async () => {
        const verdict = await authorizeConnection(ctx, node, request, offered);
        // sshd asks twice per connection (query, then signed request): the first allowed answer is the
        // connection's one audit event; the second is the same connection and is not recorded again.
        if (await ctx.store.nodes.firstAllowedCall(node, request.connection, ctx.now())) {
          await ctx.audit.record({
            type: 'session.connect',
            actor: verdict.user,
            clientAddr: call.clientAddr,
            success: true,
            message: `${request.login}@${node} allowed${verdict.singleUse ? ' (single-use certificate)' : ''}`,
            fields: {
              node,
              login: request.login,
              connection: request.connection,
              single_use: verdict.singleUse,
            },
          });
        }
        return { principals: verdict.principals };
      });
    },
  };
}
