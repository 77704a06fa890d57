// Nodes as stored: their documents, and registration, which signs what a node's sshd and keyport-node
// need: a host certificate (host CA) for the node's host key, and a client identity (TLS CA) for the
// node's X.509 key. The private keys never come here: `keyport admin nodes add` makes them and sends the
// public halves.
import { KeyportError } from '../../proto/errors';
import type { RegisterNodeRequest, RegisterNodeResponse } from '../../proto/gen/keyport/v1/admin';
import type { Node } from '../../proto/resources/schema';
import { NODE_ADDR } from '../../proto/resources/schema';
import { CaError } from '../ca/errors';
import { parseSshPublicKey, signSshUserCertificate, sshCaPublicKeyLine, sshPublicKeyLine } from '../ca/ssh';
import type { SshUserCertificateAuthority } from '../ca/authority';
import { parseClientPublicKey } from '../ca/spki';
import { issueClientCertificate } from '../ca/x509';
import type { ServiceContext } from '../context';
import { NODE_IDENTITY_CLAIM } from '../identity';
import { validateResource } from '../policy';
import type { Store } from '../storage/store';

/** How long a node's host certificate and identity last; registering the node again replaces both. */
export const NODE_CREDENTIAL_TTL_MS = 365 * 24 * 60 * 60 * 1000;
const BACKDATE_MS = 60 * 60 * 1000;

export function hostAuthority(ctx: ServiceContext): SshUserCertificateAuthority {
  const ca = ctx.authorities.sshHost;
  if (!ca) throw new KeyportError('INTERNAL', 'This auth service has no SSH host CA.');
  return ca;
}

/** The node named `name`, or NOT_FOUND saying what to do. */
export async function getNode(store: Store, name: string): Promise<Node> {
  const row = await store.nodes.get(name);
  if (!row) {
    throw new KeyportError(
      'NOT_FOUND',
      `Node "${name}" is not registered in this cluster: see \`keyport ls\`.`,
    );
  }
  return JSON.parse(row.doc_json) as Node;
}

export async function listNodes(store: Store): Promise<Node[]> {
  return (await store.nodes.list()).map((row) => JSON.parse(row.doc_json) as Node);
}

/** The host part of HOST:PORT (brackets of an IPv6 address dropped). */
export function addrHost(addr: string): string {
  const host = NODE_ADDR.exec(addr)?.[1] ?? addr;
  return host.startsWith('[') ? host.slice(1, -1) : host;
}

function caFieldError(error: unknown, fieldPath: string): never {
  if (error instanceof CaError) throw new KeyportError('INVALID_ARGUMENT', error.message, { fieldPath });
  throw error;
}

export interface NodeRegistration {
  node: Node;
  hostCertificate: string;
  identityCertificatePem: string;
  identitySerial: string;
}

/**
 * Checks a registration and signs the node's credentials; stores nothing (the caller stores the node with
 * the identity's serial, so that a refused write leaves no usable identity behind).
 */
export async function signNodeRegistration(
  ctx: ServiceContext,
  request: RegisterNodeRequest,
): Promise<NodeRegistration> {
  const node = validateResource(
    JSON.stringify({
      kind: 'node',
      version: 'v2',
      sub_kind: 'openssh',
      metadata: { name: request.name, labels: request.labels },
      spec: { addr: request.addr },
    }),
  ) as Node;
  let hostKey;
  try {
    hostKey = parseSshPublicKey(request.hostPublicKey);
  } catch (error) {
    caFieldError(error, 'host_public_key');
  }
  let identityKey;
  try {
    identityKey = parseClientPublicKey(request.identityPublicKeyPem);
  } catch (error) {
    caFieldError(error, 'identity_public_key_pem');
  }
  const now = ctx.now();
  const name = node.metadata.name;
  const principals = [...new Set([name, addrHost(node.spec.addr)])];
  const hostCertificate = await signSshUserCertificate({
    ca: hostAuthority(ctx),
    certificateType: 'host',
    publicKey: hostKey,
    keyId: name,
    principals,
    validAfter: new Date(now - BACKDATE_MS),
    validBefore: new Date(now + NODE_CREDENTIAL_TTL_MS),
    extensions: {},
  });
  const identity = await issueClientCertificate({
    authorities: ctx.authorities,
    publicKeyPem: identityKey,
    user: `node:${name}`,
    roles: [],
    logins: [],
    mfaVerified: false,
    extra: { [NODE_IDENTITY_CLAIM]: name },
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + NODE_CREDENTIAL_TTL_MS),
  });
  return {
    node,
    hostCertificate,
    identityCertificatePem: identity.certPem,
    identitySerial: identity.serial.toString(16),
  };
}

export const hostCaLine = (ctx: ServiceContext) => sshPublicKeyLine(hostAuthority(ctx).publicKey);

/**
 * AdminService.RegisterNode once authorised: signs the credentials, then stores the node with its new
 * identity and audits it in one transaction. Without force, a node that exists is ALREADY_EXISTS and
 * nothing changes (the signed identity is never stored, so it authenticates nothing).
 */
export async function registerNode(
  ctx: ServiceContext,
  request: RegisterNodeRequest,
  by: { actor: string; clientAddr: string },
): Promise<RegisterNodeResponse> {
  const signed = await signNodeRegistration(ctx, request);
  const name = signed.node.metadata.name;
  return ctx.store.transaction(async (tx) => {
    const replaced = (await tx.nodes.get(name)) !== undefined;
    const written = await tx.nodes.put(name, JSON.stringify(signed.node), {
      replace: request.force,
      nowMs: ctx.now(),
      identitySerial: signed.identitySerial,
    });
    if (!written) {
      throw new KeyportError('ALREADY_EXISTS', `Node "${name}" already exists; use --force to replace it.`);
    }
    await ctx.audit.record(
      {
        type: 'node.register',
        actor: by.actor,
        clientAddr: by.clientAddr,
        success: true,
        message: `node/${name} ${replaced ? 'registered again' : 'registered'} at ${signed.node.spec.addr}`,
        fields: { node: name, addr: signed.node.spec.addr, labels: signed.node.metadata.labels ?? {} },
      },
      tx,
    );
    return {
      node: { kind: 'node', name, json: JSON.stringify(signed.node) },
      hostCertificate: signed.hostCertificate,
      userCaPublicKey: sshCaPublicKeyLine(ctx.authorities),
      hostCaPublicKey: hostCaLine(ctx),
      identityCertificatePem: signed.identityCertificatePem,
      tlsCaCertificatePem: ctx.authorities.tls.certPem,
    };
  });
}
