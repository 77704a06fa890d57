import { describe, expect, it } from 'vitest';
import { ResourceError } from './errors';
import { formatResourceYaml, parseResourceDocuments, parseResourceJson } from './parse';
import { normalizeCap } from './schema';
import type { ClusterAuthPreferenceSpec } from './schema';
import { withoutClientSecret } from './oidc';
import type { OidcConnector } from './oidc';

// Teleport's documented example, with Keyport's require_local_mfa.
const CONNECTOR_YAML = `
kind: oidc
version: v3
metadata:
  name: okta
spec:
  issuer_url: https://example.okta.com
  client_id: 0oa1example
  client_secret: s3cr3t-value
  redirect_url: https://keyport.example.com:3080/v1/webapi/oidc/callback
  display: Okta
  scope: [groups, email]
  max_age: 24h
  prompt: select_account
  claims_to_roles:
    - claim: groups
      value: admins
      roles: [editor]
    - claim: groups
      value: "team-*"
      roles: [access, "$1-dev"]
    - claim: groups
      value: "^ops-(.*)$"
      roles: ["\${1}-ops"]
  require_local_mfa: true
`;

function errorOf(run: () => unknown): ResourceError {
  try {
    run();
  } catch (error) {
    if (error instanceof ResourceError) return error;
    throw error;
  }
  throw new Error('expected a ResourceError');
}

function connector(spec: Record<string, unknown>, name = 'okta'): string {
  return JSON.stringify({
    kind: 'oidc',
    version: 'v3',
    metadata: { name },
    spec: {
      issuer_url: 'https://idp.example.com',
      client_id: 'keyport',
      client_secret: 'secret',
      redirect_url: 'https://keyport.example.com/v1/webapi/oidc/callback',
      claims_to_roles: [{ claim: 'groups', value: 'admins', roles: ['editor'] }],
      ...spec,
    },
  });
}

function issueOf(spec: Record<string, unknown>, name?: string) {
  const error = errorOf(() => parseResourceJson(connector(spec, name)));
  return { fieldPath: error.fieldPath, message: error.issues[0]?.message ?? '' };
}

describe('the oidc resource', () => {
  it("loads Teleport's shape, redirect_url as a list", () => {
    const [resource] = parseResourceDocuments(CONNECTOR_YAML);
    expect(resource?.kind).toBe('oidc');
    const oidc = resource as OidcConnector;
    expect(oidc.version).toBe('v3');
    expect(oidc.spec.redirect_url).toEqual(['https://keyport.example.com:3080/v1/webapi/oidc/callback']);
    expect(oidc.spec.claims_to_roles).toHaveLength(3);
    expect(oidc.spec.require_local_mfa).toBe(true);
  });

  it('takes a list of redirect URLs, duplicates dropped', () => {
    const oidc = parseResourceJson(
      connector({
        redirect_url: ['https://a.example.com/cb', 'https://b.example.com/cb', 'https://a.example.com/cb'],
      }),
    ) as OidcConnector;
    expect(oidc.spec.redirect_url).toEqual(['https://a.example.com/cb', 'https://b.example.com/cb']);
  });

  it('prints without the client secret, and the printed form loads again', () => {
    const oidc = parseResourceDocuments(CONNECTOR_YAML)[0] as OidcConnector;
    const printed = formatResourceYaml(withoutClientSecret(oidc));
    expect(printed).not.toContain('s3cr3t-value');
    expect(printed).not.toContain('client_secret');
    const again = parseResourceDocuments(printed)[0] as OidcConnector;
    expect(again.spec.claims_to_roles).toEqual(oidc.spec.claims_to_roles);
  });

  it.each([
    [{ issuer_url: 'http://idp.example.com' }, 'spec.issuer_url', /must be an https URL, got http/],
    [{ issuer_url: 'idp.example.com' }, 'spec.issuer_url', /is not a URL/],
    [{ issuer_url: 'https://idp.example.com/?tenant=1' }, 'spec.issuer_url', /must not have a \?query/],
    [{ issuer_url: 'https://u:p@idp.example.com' }, 'spec.issuer_url', /user name or password/],
    [{ issuer_url: `https://idp.example.com/${'a'.repeat(2048)}` }, 'spec.issuer_url', /at most 2048/],
    [{ redirect_url: 'http://keyport.example.com/cb' }, 'spec.redirect_url', /must be an https URL/],
    [{ redirect_url: ['https://ok.example.com/cb', 'http://x/cb'] }, 'spec.redirect_url[1]', /https/],
    [{ redirect_url: [] }, 'spec.redirect_url', /must not be empty/],
    [{ redirect_url: 42 }, 'spec.redirect_url', /expected an https URL, got 42/],
    [{ redirect_url: 'https://x.example.com/cb#frag' }, 'spec.redirect_url', /fragment/],
    [{ client_id: '' }, 'spec.client_id', /must not be empty/],
    [{ client_id: 'c'.repeat(257) }, 'spec.client_id', /at most 256/],
    [{ client_secret: 's'.repeat(1025) }, 'spec.client_secret', /at most 1024/],
    [{ display: 'd'.repeat(129) }, 'spec.display', /at most 128/],
    [{ scope: ['groups email'] }, 'spec.scope[0]', /one word/],
    [{ max_age: '1.5s' }, 'spec.max_age', /whole seconds/],
    [{ max_age: '1d' }, 'spec.max_age', /Go-style duration/],
    [{ prompt: 'always' }, 'spec.prompt', /unknown prompt "always"/],
    [{ prompt: 'none login' }, 'spec.prompt', /cannot be combined/],
    [{ claims_to_roles: [] }, 'spec.claims_to_roles', /must not be empty/],
    [
      { claims_to_roles: [{ claim: 'groups', value: 'a', roles: [] }] },
      'spec.claims_to_roles[0].roles',
      /must not be empty/,
    ],
    [
      { claims_to_roles: [{ claim: 'groups', value: '^(a)\\1$', roles: ['x'] }] },
      'spec.claims_to_roles[0].value',
      /backreferences/,
    ],
    [
      { claims_to_roles: [{ claim: 'groups', value: '^(?=a).*$', roles: ['x'] }] },
      'spec.claims_to_roles[0].value',
      /lookarounds/,
    ],
    [
      { claims_to_roles: [{ claim: 'groups', value: '^a-(.*)$', roles: ['ok', '$2'] }] },
      'spec.claims_to_roles[0].roles[1]',
      /names group \$2/,
    ],
    [{ require_local_mfa: 'yes' }, 'spec.require_local_mfa', /expected true or false/],
    [{ acr_values: 'mfa' }, 'spec.acr_values', /unknown field/],
  ])('refuses %j at %s', (spec, fieldPath, message) => {
    const issue = issueOf(spec);
    expect(issue.fieldPath).toBe(fieldPath);
    expect(issue.message).toMatch(message);
  });

  it('refuses the names that connector_name gives another meaning', () => {
    for (const name of ['local', 'passwordless']) {
      const issue = issueOf({}, name);
      expect(issue.fieldPath).toBe('metadata.name');
      expect(issue.message).toMatch(/is reserved/);
    }
  });

  it('needs issuer_url, client_id, redirect_url and claims_to_roles', () => {
    const error = errorOf(() =>
      parseResourceJson(JSON.stringify({ kind: 'oidc', metadata: { name: 'x' }, spec: {} })),
    );
    expect(error.issues.map((issue) => issue.fieldPath).sort()).toEqual([
      'spec.claims_to_roles',
      'spec.client_id',
      'spec.issuer_url',
      'spec.redirect_url',
    ]);
  });
});

describe('cluster_auth_preference with type oidc', () => {
  const cap = (spec: Record<string, unknown>) =>
    JSON.stringify({ kind: 'cluster_auth_preference', version: 'v2', spec });

  it('names the default connector, or none (every connector is offered)', () => {
    for (const spec of [{ type: 'oidc', connector_name: 'okta' }, { type: 'oidc' }]) {
      const parsed = parseResourceJson(cap(spec));
      if (parsed.kind !== 'cluster_auth_preference') throw new Error('expected a cap');
      expect(normalizeCap(parsed.spec)).toMatchObject(spec);
    }
  });

  it.each(['local', 'passwordless'])('refuses connector_name %j with type oidc', (name) => {
    const error = errorOf(() => parseResourceJson(cap({ type: 'oidc', connector_name: name })));
    expect(error.fieldPath).toBe('spec.connector_name');
    expect(error.message).toMatch(/is no oidc connector/);
  });

  it('still loads such a cap stored before the check (normalizeCap does not refuse it)', () => {
    const stored: ClusterAuthPreferenceSpec = { type: 'oidc', connector_name: 'local' };
    expect(normalizeCap(stored)).toMatchObject({ type: 'oidc', connector_name: 'local' });
  });
});
