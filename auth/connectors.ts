// SSO connectors (kind oidc) as the services see them: the client secret sealed under the key-encryption
// key on the way in and never on the way out, the document the admin API prints, the connectors a client
// may offer ("Sign in with DISPLAY"), and the cap's connector_name kept pointing at one that exists.
import { KeyportError } from '../proto/errors';
import type { Resource } from '../proto/gen/keyport/v1/admin';
import { normalizeCap } from '../proto/resources/schema';
import type { ClusterAuthPreferenceSpec, OidcConnector } from '../proto/resources/schema';
import { capDocument } from './policy';
import type { Sealer } from './secrets';
import type { OidcConnectorRow } from './storage/connectors';
import type { Store } from './storage/store';

/** What an oidc connector's client secret is bound to: it opens for no other connector. */
export const oidcClientSecretContext = (name: string) => `oidc-client-secret:${name}`;

/** The stored document: the connector without its client secret (which has a column of its own). */
function documentWithoutSecret(connector: OidcConnector): string {
  const { client_secret: _secret, ...spec } = connector.spec;
  return JSON.stringify({ ...connector, spec });
}

/** The connector as the admin API returns it; the stored document never holds the secret. */
export function connectorResource(row: OidcConnectorRow): Resource {
  return { kind: 'oidc', name: row.name, json: row.doc_json };
}

/** A stored connector, whole: its document and its client secret, opened (for the login ceremony). */
export function openConnector(row: OidcConnectorRow, secrets: Sealer): OidcConnector {
  const connector = JSON.parse(row.doc_json) as OidcConnector;
  return {
    ...connector,
    spec: {
      ...connector.spec,
      client_secret: secrets.open(row.client_secret, oidcClientSecretContext(row.name)),
    },
  };
}

/**
 * Writes a validated connector (create, or replace with `force`). A new connector needs a client secret;
 * a replacement without one keeps the stored secret, so `get`, edit, `create --force` works although `get`
 * never prints it. `at` prefixes messages and field paths with the document's place in a batch.
 */
export async function writeOidcConnector(
  tx: Store,
  secrets: Sealer,
  connector: OidcConnector,
  options: { force: boolean; at: string; nowMs: number },
): Promise<{ written: Resource; replaced: boolean }> {
  const { force, at, nowMs } = options;
  const name = connector.metadata.name;
  const docJson = documentWithoutSecret(connector);
  const secret = connector.spec.client_secret;
  const sealed = secret === undefined ? undefined : secrets.seal(secret, oidcClientSecretContext(name));
  const replaced = force && (await tx.connectors.replace(name, docJson, sealed, nowMs));
  if (!replaced) {
    if (sealed === undefined) {
      throw new KeyportError(
        'INVALID_ARGUMENT',
        `${at}A new oidc connector needs its client_secret (the IdP's secret for client_id "${connector.spec.client_id}").`,
        { fieldPath: `${at ? `${at.slice(0, -2)}.` : ''}spec.client_secret` },
      );
    }
    if (!(await tx.connectors.insert(name, docJson, sealed, nowMs))) {
      throw new KeyportError(
        'ALREADY_EXISTS',
        `${at}Oidc connector "${name}" already exists; use --force to replace it.`,
      );
    }
  }
  const row = await tx.connectors.get(name);
  if (row === undefined) throw new KeyportError('INTERNAL', `Oidc connector "${name}" was not written.`);
  return { written: connectorResource(row), replaced };
}

/**
 * Refuses a cap whose `type: oidc` names a connector that does not exist. Checked when the cap is written
 * through the API (and the named connector cannot be deleted while the cap names it), so a cluster never
 * sends its people to a connector that is not there. A cap applied from keyport-auth's config file at
 * start is not refused (the connector is created afterwards, through the API): the login reports it.
 */
export async function checkCapConnector(
  tx: Store,
  spec: ClusterAuthPreferenceSpec,
  fieldPathPrefix: string,
): Promise<void> {
  const cap = normalizeCap(spec);
  if (cap.type !== 'oidc' || cap.connector_name === undefined) return;
  if ((await tx.connectors.get(cap.connector_name)) === undefined) {
    throw new KeyportError(
      'INVALID_ARGUMENT',
      `No oidc connector is named "${cap.connector_name}"; create it first (keyport admin create -f), or name one of keyport admin get oidc.`,
      { fieldPath: `${fieldPathPrefix}spec.connector_name` },
    );
  }
}

/** Refuses to delete the connector the cap names as the cluster's default. */
export async function checkConnectorNotDefault(tx: Store, name: string): Promise<void> {
  const cap = normalizeCap((await capDocument(tx)).spec);
  if (cap.type === 'oidc' && cap.connector_name === name) {
    throw new KeyportError(
      'PRECONDITION_FAILED',
      `Oidc connector "${name}" is the cluster's default (cluster_auth_preference connector_name); name another or set type: local first.`,
    );
  }
}

export interface ConnectorView {
  name: string;
  display: string;
  type: 'oidc';
}

/** The connectors a client may offer, name and display only ("Sign in with DISPLAY"). */
export async function listConnectorViews(store: Store): Promise<ConnectorView[]> {
  return (await store.connectors.list()).map((row) => {
    const connector = JSON.parse(row.doc_json) as OidcConnector;
    return { name: row.name, display: connector.spec.display ?? row.name, type: 'oidc' };
  });
}
