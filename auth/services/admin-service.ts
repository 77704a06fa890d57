// AdminService: resources, users, locks and the audit log, each call authorised by the caller's role
// rules (resource × verb). The auth host's builtin admin identity is allowed everything.
import { KeyportError } from '../../proto/errors';
import type {
  AuditEvent,
  ClusterStatus,
  CreateResourcesRequest,
  CreateResourcesResponse,
  CreateUserRequest,
  CreateUserResponse,
  DeleteResourceRequest,
  GetResourceRequest,
  ListAuditEventsRequest,
  ListAuditEventsResponse,
  ListResourcesRequest,
  ListResourcesResponse,
  LockUserRequest,
  RegisterNodeRequest,
  RegisterNodeResponse,
  Resource,
  UnlockUserRequest,
} from '../../proto/gen/keyport/v1/admin';
import type { ServiceContext } from '../context';
import { SIGNUP_TOKEN_TTL_MS } from '../context';
import { authorize as authorizeRule } from '../authorize';
import { BUILTIN_ADMIN } from '../identity';
import type { Identity } from '../identity';
import { canonicalKind, CAP_KIND, capDocument, userDocument, validateResource } from '../policy';
import type { CallContext } from '../rpc';
import type { Store } from '../storage/store';
import type { Resource as ResourceDocument } from '../../proto/resources';
import { hashToken, newToken } from '../tokens';
import { registerNode } from '../nodes/registry';
import {
  checkCapConnector,
  checkConnectorNotDefault,
  connectorResource,
  writeOidcConnector,
} from '../connectors';
import { isAuditType, unknownAuditTypeMessage } from '../../proto/audit-types';

const USER_NAME = /^[a-z0-9][a-z0-9._@-]{0,63}$/i;

export function adminService(ctx: ServiceContext) {
  const authorize = (call: CallContext, resource: string, verb: string): Promise<Identity> =>
    authorizeRule(ctx, call, resource, verb);

  /** The addresses locked out for this name now (auth/lockout.ts). */
  async function lockoutsOf(name: string, store: Store = ctx.store) {
    const now = ctx.now();
    const all = await store.throttle.lockouts(
      name,
      now - ctx.lockout.windowMs,
      ctx.lockout.maxAttempts,
      ctx.lockout.durationMs,
    );
    return all.filter((lockout) => lockout.untilMs > now);
  }

  async function getUserResource(name: string, store: Store = ctx.store): Promise<Resource> {
    const row = await store.getUser(name);
    if (!row) throw new KeyportError('NOT_FOUND', `User "${name}" does not exist.`);
    return { kind: 'user', name, json: JSON.stringify(userDocument(row, await lockoutsOf(name, store))) };
  }

  async function getRoleResource(name: string, store: Store = ctx.store): Promise<Resource> {
    const json = await store.getRoleJson(name);
    if (!json) throw new KeyportError('NOT_FOUND', `Role "${name}" does not exist.`);
    return { kind: 'role', name, json };
  }

  async function getNodeResource(name: string, store: Store = ctx.store): Promise<Resource> {
    const row = await store.nodes.get(name);
    if (!row) throw new KeyportError('NOT_FOUND', `Node "${name}" does not exist.`);
    return { kind: 'node', name, json: row.doc_json };
  }

  async function getOidcResource(name: string, store: Store = ctx.store): Promise<Resource> {
    const row = await store.connectors.get(name);
    if (!row) throw new KeyportError('NOT_FOUND', `Oidc connector "${name}" does not exist.`);
    return connectorResource(row);
  }

  async function checkRolesExist(
    roles: readonly string[],
    fieldPath: string,
    store: Store = ctx.store,
  ): Promise<void> {
    for (const [index, role] of roles.entries()) {
      if (!(await store.getRoleJson(role))) {
        throw new KeyportError('INVALID_ARGUMENT', `Role "${role}" does not exist.`, {
          fieldPath: `${fieldPath}[${index}]`,
        });
      }
    }
  }

  /** Writes one validated document; `at` prefixes messages with the document's place in a batch. */
  async function writeResource(
    tx: Store,
    resource: ResourceDocument,
    force: boolean,
    at: string,
  ): Promise<{ written: Resource; replaced: boolean }> {
    const name = resource.metadata.name;
    const now = ctx.now();
    if (resource.kind === 'role') {
      const replaced = (await tx.getRoleJson(name)) !== undefined;
      if (!(await tx.putRole(name, JSON.stringify(resource), force, now))) {
        throw new KeyportError(
          'ALREADY_EXISTS',
          `${at}Role "${name}" already exists; use --force to replace it.`,
        );
      }
      return { written: await getRoleResource(name, tx), replaced };
    }
    if (resource.kind === 'user') {
      if (name === BUILTIN_ADMIN) {
        throw new KeyportError(
          'INVALID_ARGUMENT',
          `${at}"${BUILTIN_ADMIN}" is reserved for the auth host's own admin.`,
          {
            fieldPath: `${at ? `${at.slice(0, -2)}.` : ''}metadata.name`,
          },
        );
      }
      await checkRolesExist(resource.spec.roles, `${at ? `${at.slice(0, -2)}.` : ''}spec.roles`, tx);
      const specJson = JSON.stringify(resource.spec);
      const replaced = !(await tx.insertUser(name, specJson, now));
      if (replaced) {
        if (!force) {
          throw new KeyportError(
            'ALREADY_EXISTS',
            `${at}User "${name}" already exists; use --force to replace it.`,
          );
        }
        await tx.updateUserSpec(name, specJson, now);
      }
      return { written: await getUserResource(name, tx), replaced };
    }
    if (resource.kind === 'node') {
      const replaced = (await tx.nodes.get(name)) !== undefined;
      if (!(await tx.nodes.put(name, JSON.stringify(resource), { replace: force, nowMs: now }))) {
        throw new KeyportError(
          'ALREADY_EXISTS',
          `${at}Node "${name}" already exists; use --force to replace it.`,
        );
      }
      return { written: await getNodeResource(name, tx), replaced };
    }
    if (resource.kind === 'oidc') {
      return writeOidcConnector(tx, ctx.secrets, resource, { force, at, nowMs: now });
    }
    // The cluster_auth_preference is a singleton that always exists (with defaults): writing it replaces it.
    await checkCapConnector(tx, resource.spec, at ? `${at.slice(0, -2)}.` : '');
    await tx.putConfig(CAP_KIND, JSON.stringify(resource), now);
    return { written: { kind: CAP_KIND, name, json: JSON.stringify(resource) }, replaced: true };
  }

  return {
    /** `keyport admin nodes add`: a node write like create -f (verbs create, and update with force). */
    async registerNode(request: RegisterNodeRequest, call: CallContext): Promise<RegisterNodeResponse> {
      let identity: Identity | undefined;
      for (const verb of request.force ? ['create', 'update'] : ['create']) {
        identity = await authorize(call, 'node', verb);
      }
      return registerNode(ctx, request, { actor: identity?.user ?? 'unknown', clientAddr: call.clientAddr });
    },

    async getClusterStatus(_request: unknown, call: CallContext): Promise<ClusterStatus> {
      await authorize(call, 'cluster', 'read');
      return {
        clusterName: ctx.clusterName,
        version: ctx.version,
        caPin: ctx.caPin,
        publicAddr: ctx.publicAddr,
        users: await ctx.store.countUsers(),
        roles: await ctx.store.countRoles(),
      };
    },

    async getResource(request: GetResourceRequest, call: CallContext): Promise<Resource> {
      const kind = canonicalKind(request.kind);
      await authorize(call, kind, 'read');
      if (kind === 'user') return getUserResource(request.name);
      if (kind === 'role') return getRoleResource(request.name);
      if (kind === 'node') return getNodeResource(request.name);
      if (kind === 'oidc') return getOidcResource(request.name);
      return {
        kind: CAP_KIND,
        name: 'cluster-auth-preference',
        json: JSON.stringify(await capDocument(ctx.store)),
      };
    },

    async listResources(request: ListResourcesRequest, call: CallContext): Promise<ListResourcesResponse> {
      const kind = canonicalKind(request.kind);
      await authorize(call, kind, 'list');
      if (kind === 'user') {
        const rows = await ctx.store.listUsers();
        return {
          resources: await Promise.all(
            rows.map(async (row) => ({
              kind: 'user',
              name: row.name,
              json: JSON.stringify(userDocument(row, await lockoutsOf(row.name))),
            })),
          ),
        };
      }
      if (kind === 'node') {
        const rows = await ctx.store.nodes.list();
        return { resources: rows.map((row) => ({ kind: 'node', name: row.name, json: row.doc_json })) };
      }
      if (kind === 'oidc') {
        return { resources: (await ctx.store.connectors.list()).map(connectorResource) };
      }
      if (kind === 'role') {
        const docs = await ctx.store.listRoleJson();
        return {
          resources: docs.map((json) => ({ kind: 'role', name: JSON.parse(json).metadata.name, json })),
        };
      }
      return {
        resources: [
          {
            kind: CAP_KIND,
            name: 'cluster-auth-preference',
            json: JSON.stringify(await capDocument(ctx.store)),
          },
        ],
      };
    },

    async createResources(
      request: CreateResourcesRequest,
      call: CallContext,
    ): Promise<CreateResourcesResponse> {
      if (request.documentsJson.length === 0) {
        throw new KeyportError('INVALID_ARGUMENT', 'No resource to create.', { fieldPath: 'documents_json' });
      }
      const several = request.documentsJson.length > 1;
      const resources = request.documentsJson.map((json, index) =>
        validateResource(json, several ? `documents[${index}]` : ''),
      );
      let identity: Identity | undefined;
      for (const resource of resources) {
        // The cap always exists, so writing it is an update; --force may create or replace, so it needs both.
        const verbs =
          resource.kind === 'cluster_auth_preference'
            ? ['update']
            : request.force
              ? ['create', 'update']
              : ['create'];
        for (const verb of verbs) identity = await authorize(call, resource.kind, verb);
      }
      const actor = identity?.user ?? 'unknown';
      // One transaction: every document lands, or none does.
      return ctx.store.transaction(async (tx) => {
        const created: Resource[] = [];
        for (const [index, resource] of resources.entries()) {
          const at = several ? `documents[${index}]: ` : '';
          const { written, replaced } = await writeResource(tx, resource, request.force, at);
          created.push(written);
          const name = resource.metadata.name;
          const isUser = resource.kind === 'user';
          const type = isUser
            ? replaced
              ? 'user.update'
              : 'user.create'
            : replaced
              ? 'resource.update'
              : 'resource.create';
          await ctx.audit.record(
            {
              type,
              actor,
              clientAddr: call.clientAddr,
              success: true,
              message: `${resource.kind}/${name}`,
              fields: isUser
                ? { kind: 'user', name, user: name, roles: resource.spec.roles }
                : { kind: resource.kind, name },
            },
            tx,
          );
        }
        return { resources: created };
      });
    },

    async deleteResource(request: DeleteResourceRequest, call: CallContext): Promise<Record<string, never>> {
      const kind = canonicalKind(request.kind);
      const identity = await authorize(call, kind, 'delete');
      if (kind === 'cluster_auth_preference') {
        throw new KeyportError(
          'INVALID_ARGUMENT',
          'The cluster_auth_preference cannot be deleted; edit it instead.',
          {
            fieldPath: 'kind',
          },
        );
      }
      // One transaction: the assignment check, the delete and its audit event land together.
      await ctx.store.transaction(async (tx) => {
        if (kind === 'user') {
          if (!(await tx.deleteUser(request.name))) {
            throw new KeyportError('NOT_FOUND', `User "${request.name}" does not exist.`);
          }
        } else if (kind === 'node') {
          if (!(await tx.nodes.delete(request.name))) {
            throw new KeyportError('NOT_FOUND', `Node "${request.name}" does not exist.`);
          }
        } else if (kind === 'oidc') {
          await checkConnectorNotDefault(tx, request.name);
          if (!(await tx.connectors.delete(request.name))) {
            throw new KeyportError('NOT_FOUND', `Oidc connector "${request.name}" does not exist.`);
          }
        } else {
          const holder = (await tx.listUsers()).find((u) =>
            (JSON.parse(u.spec_json).roles as string[]).includes(request.name),
          );
          if (holder) {
            throw new KeyportError(
              'PRECONDITION_FAILED',
              `Role "${request.name}" is assigned to user "${holder.name}"; remove it from every user first.`,
            );
          }
          if (!(await tx.deleteRole(request.name))) {
            throw new KeyportError('NOT_FOUND', `Role "${request.name}" does not exist.`);
          }
        }
        await ctx.audit.record(
          {
            type: kind === 'user' ? 'user.delete' : 'resource.delete',
            actor: identity,
            clientAddr: call.clientAddr,
            success: true,
            message: `${kind}/${request.name}`,
            fields: { kind, name: request.name },
          },
          tx,
        );
      });
      return {};
    },

    async createUser(request: CreateUserRequest, call: CallContext): Promise<CreateUserResponse> {
      const identity = await authorize(call, 'user', 'create');
      if (!USER_NAME.test(request.name)) {
        throw new KeyportError(
          'INVALID_ARGUMENT',
          'A user name has 1 to 64 letters, digits, ".", "_", "@" or "-", and starts with a letter or digit.',
          { fieldPath: 'name' },
        );
      }
      if (request.name === BUILTIN_ADMIN) {
        throw new KeyportError(
          'INVALID_ARGUMENT',
          `"${BUILTIN_ADMIN}" is reserved for the auth host's own admin.`,
          {
            fieldPath: 'name',
          },
        );
      }
      if (request.roles.length === 0) {
        throw new KeyportError('INVALID_ARGUMENT', 'Give the user at least one role (--roles).', {
          fieldPath: 'roles',
        });
      }
      await checkRolesExist(request.roles, 'roles');
      const spec = {
        roles: request.roles,
        traits: Object.fromEntries(Object.entries(request.traits).map(([k, v]) => [k, v.split(',')])),
      };
      validateResource(
        JSON.stringify({ kind: 'user', version: 'v2', metadata: { name: request.name }, spec }),
      );
      const token = newToken();
      const now = ctx.now();
      const expiresMs = now + SIGNUP_TOKEN_TTL_MS;
      await ctx.store.transaction(async (tx) => {
        if (!(await tx.insertUser(request.name, JSON.stringify(spec), now))) {
          throw new KeyportError('ALREADY_EXISTS', `User "${request.name}" already exists.`);
        }
        await tx.insertSignupToken({
          token_hash: hashToken(token),
          user: request.name,
          created_ms: now,
          expires_ms: expiresMs,
          used: 0,
          pending_totp_secret: null,
        });
        await ctx.audit.record(
          {
            type: 'user.create',
            actor: identity,
            clientAddr: call.clientAddr,
            success: true,
            message: `user/${request.name} with roles ${request.roles.join(', ')}`,
            fields: { user: request.name, roles: request.roles },
          },
          tx,
        );
      });
      return { user: request.name, signupToken: token, tokenExpiresMs: expiresMs };
    },

    async lockUser(request: LockUserRequest, call: CallContext): Promise<Resource> {
      const identity = await authorize(call, 'user', 'update');
      const now = ctx.now();
      const until =
        Number(request.durationSeconds) > 0
          ? now + Number(request.durationSeconds) * 1000
          : Number.MAX_SAFE_INTEGER;
      // The lock and its audit event land together, or neither does (a database lost between them).
      await ctx.store.transaction(async (tx) => {
        if (!(await tx.setLock(request.name, until, request.reason || 'locked by an admin', now))) {
          throw new KeyportError('NOT_FOUND', `User "${request.name}" does not exist.`);
        }
        // The user's web sessions end with the lock (each request checks the lock too).
        const webSessionsEnded = await tx.webSessions.deleteForUser(request.name);
        await ctx.audit.record(
          {
            type: 'user.lock',
            actor: identity,
            clientAddr: call.clientAddr,
            success: true,
            message: request.reason || 'locked by an admin',
            fields: { user: request.name, locked_until_ms: until, web_sessions_ended: webSessionsEnded },
          },
          tx,
        );
      });
      return getUserResource(request.name);
    },

    async unlockUser(request: UnlockUserRequest, call: CallContext): Promise<Resource> {
      const identity = await authorize(call, 'user', 'update');
      const now = ctx.now();
      await ctx.store.transaction(async (tx) => {
        if (!(await tx.setLock(request.name, null, null, now))) {
          throw new KeyportError('NOT_FOUND', `User "${request.name}" does not exist.`);
        }
        // Every address's lockout for this name ends with the admin's unlock.
        await tx.throttle.clearFailures(request.name);
        await ctx.audit.record(
          {
            type: 'user.unlock',
            actor: identity,
            clientAddr: call.clientAddr,
            success: true,
            message: 'unlocked by an admin',
            fields: { user: request.name },
          },
          tx,
        );
      });
      return getUserResource(request.name);
    },

    async listAuditEvents(
      request: ListAuditEventsRequest,
      call: CallContext,
    ): Promise<ListAuditEventsResponse> {
      await authorize(call, 'event', 'list');
      if (request.type && !isAuditType(request.type)) {
        throw new KeyportError('INVALID_ARGUMENT', unknownAuditTypeMessage(request.type), {
          fieldPath: 'type',
        });
      }
      const rows = await ctx.store.listAudit({
        sinceMs: Number(request.sinceMs) || undefined,
        type: request.type || undefined,
        limit: request.limit || undefined,
      });
      return {
        events: rows.map((row): AuditEvent => ({
          id: row.id,
          timeMs: row.time_ms,
          type: row.type,
          actor: row.actor,
          clientAddr: row.client_addr,
          success: row.success === 1,
          message: row.message,
          fieldsJson: row.fields_json,
        })),
      };
    },
  };
}
