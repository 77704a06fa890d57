// Admin authorisation, shared by the services that administer something (resources, users, devices):
// the caller's certificate, then their roles' rules for (resource, verb). The auth host's builtin admin
// identity is allowed everything. A refusal is audited. A write (any verb but read and list) also needs, where
// the cluster enforces MFA for admin actions, a security key's answer bound to the call (admin-mfa.ts).
import { KeyportError } from '../proto/errors';
import { isAdminWrite, requireAdminActionMfa } from './admin-mfa';
import type { ServiceContext } from './context';
import { authenticate } from './identity';
import type { Identity } from './identity';
import { roleAllows } from './policy';
import type { CallContext } from './rpc';

export async function authorize(
  ctx: ServiceContext,
  call: CallContext,
  resource: string,
  verb: string,
): Promise<Identity> {
  const identity = await authenticate(ctx, call);
  if (identity.builtin) return identity;
  if (roleAllows(identity.roleDocuments, resource, verb)) {
    if (isAdminWrite(verb)) await requireAdminActionMfa(ctx, call, identity);
    return identity;
  }
  await ctx.audit.record({
    type: 'auth.denied',
    actor: identity,
    clientAddr: call.clientAddr,
    success: false,
    message: `${verb} ${resource} denied`,
    fields: { roles: identity.roles },
  });
  throw new KeyportError(
    'ACCESS_DENIED',
    `Access denied: ${identity.user} (roles ${identity.roles.join(', ') || 'none'}) may not ${verb} ${resource}.`,
  );
}

/**
 * What the caller may do (without refusing or auditing): for views that show what a person could do.
 * The roles are read once; ask the returned check about as many (resource, verb) pairs as needed.
 */
export async function permissionsOf(
  ctx: ServiceContext,
  identity: Identity,
): Promise<(resource: string, verb: string) => boolean> {
  if (identity.builtin) return () => true;
  // The roles as authenticate read them for this call.
  return (resource, verb) => roleAllows(identity.roleDocuments, resource, verb);
}
