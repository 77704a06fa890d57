import { describe, expect, it } from 'vitest';
import { parseGoDurationSeconds } from './duration';
import { ResourceError } from './errors';
import { parseResourceDocuments, parseResourceJson } from './parse';
import {
  DEFAULT_SECOND_FACTORS,
  LEGACY_SECOND_FACTOR_VALUES,
  normalizeCap,
  resolveCaFiles,
  rpIdProblem,
} from './schema';
import type { ClusterAuthPreference, ClusterAuthPreferenceSpec, Resource } from './schema';
import { TEST_CA_PEM } from './testing';

function captureResourceError(run: () => unknown): ResourceError {
  try {
    run();
  } catch (error) {
    if (error instanceof ResourceError) return error;
    throw error;
  }
  throw new Error('expected a ResourceError');
}

async function captureAsyncResourceError(run: () => Promise<unknown>): Promise<ResourceError> {
  try {
    await run();
  } catch (error) {
    if (error instanceof ResourceError) return error;
    throw error;
  }
  throw new Error('expected a ResourceError');
}

function capDocument(spec: Record<string, unknown>): string {
  return JSON.stringify({ kind: 'cluster_auth_preference', version: 'v2', spec });
}

function parseCap(spec: Record<string, unknown>, caEntries: 'pem-only' | 'pem-or-path' = 'pem-only') {
  const cap = parseResourceJson(capDocument(spec), { caEntries });
  if (cap.kind !== 'cluster_auth_preference') throw new Error('expected a cluster_auth_preference');
  return cap;
}

describe('parseGoDurationSeconds', () => {
  it.each([
    ['8h', 8 * 3600],
    ['30m', 1800],
    ['1h30m', 5400],
    ['1.5h', 5400],
    ['30h0m0s', 30 * 3600],
    ['90s', 90],
    ['500ms', 0.5],
    ['1m30.5s', 90.5],
    ['0', 0],
  ])('%s → %d seconds', (text, seconds) => {
    expect(parseGoDurationSeconds(text)).toBe(seconds);
  });

  it.each(['', '8', '8x', 'h', '-8h', '8 h', '8h ', '1d', 'forever', '8H'])('rejects %j', (text) => {
    expect(parseGoDurationSeconds(text)).toBeUndefined();
  });

  it('max_session_ttl must be a positive duration string', () => {
    const role = (ttl: unknown) =>
      JSON.stringify({
        kind: 'role',
        version: 'v7',
        metadata: { name: 'r' },
        spec: { options: { max_session_ttl: ttl } },
      });
    expect(captureResourceError(() => parseResourceJson(role('0'))).message).toContain('longer than zero');
    expect(captureResourceError(() => parseResourceJson(role(3600))).message).toBe(
      'spec.options.max_session_ttl: invalid duration 3600; use a Go-style duration such as 8h or 30m',
    );
  });
});

describe('legacy second_factor', () => {
  const expectations = {
    off: { second_factors: [], secondFactorRequired: false },
    on: { second_factors: ['webauthn', 'otp'], secondFactorRequired: true },
    optional: { second_factors: ['webauthn', 'otp'], secondFactorRequired: false },
    otp: { second_factors: ['otp'], secondFactorRequired: true },
    webauthn: { second_factors: ['webauthn'], secondFactorRequired: true },
  } as const;

  it.each(LEGACY_SECOND_FACTOR_VALUES)('maps second_factor: %s', (value) => {
    const cap = parseCap({ second_factor: value, webauthn: { rp_id: 'example.com' } });
    expect(normalizeCap(cap.spec)).toMatchObject(expectations[value]);
  });

  it.each(LEGACY_SECOND_FACTOR_VALUES)(
    'accepts second_factor: %s together with the same second_factors',
    (value) => {
      const spec = {
        second_factor: value,
        second_factors: [...expectations[value].second_factors].reverse(),
      };
      const cap = parseCap({ ...spec, webauthn: { rp_id: 'example.com' } });
      expect(normalizeCap(cap.spec).secondFactorRequired).toBe(expectations[value].secondFactorRequired);
    },
  );

  it('detects a conflict between second_factor and second_factors, naming the legacy field', () => {
    const error = captureResourceError(() =>
      parseCap({ second_factor: 'otp', second_factors: ['webauthn'], webauthn: { rp_id: 'example.com' } }),
    );
    expect(error.fieldPath).toBe('spec.second_factor');
    expect(error.message).toContain('legacy value "otp" means [otp] but second_factors is [webauthn]');
  });

  it('normalizeCap itself refuses a conflicting spec built in code', () => {
    const spec: ClusterAuthPreferenceSpec = { second_factor: 'off', second_factors: ['otp'] };
    expect(captureResourceError(() => normalizeCap(spec)).fieldPath).toBe('spec.second_factor');
    expect(captureResourceError(() => normalizeCap(spec, 'auth_service.authentication')).fieldPath).toBe(
      'auth_service.authentication.second_factor',
    );
  });

  it('rejects u2f with advice and reads YAML 1.1 booleans', () => {
    const error = captureResourceError(() => parseCap({ second_factor: 'u2f' }));
    expect(error.fieldPath).toBe('spec.second_factor');
    expect(error.message).toContain('u2f was replaced by WebAuthn');
    expect(parseCap({ second_factor: true, webauthn: { rp_id: 'example.com' } }).spec.second_factor).toBe(
      'on',
    );
    expect(parseCap({ second_factor: false }).spec.second_factor).toBe('off');
  });

  it('defaults to the default second factors, required', () => {
    expect(normalizeCap({})).toMatchObject({
      type: 'local',
      second_factors: [...DEFAULT_SECOND_FACTORS],
      secondFactorRequired: true,
      require_session_mfa: false,
      device_trust: { mode: 'off', auto_enroll: false },
      allow_passwordless: true,
    });
  });
});

describe('passwordless', () => {
  it('maps the passwordless alias onto allow_passwordless', () => {
    const cap = parseCap({
      second_factors: ['webauthn'],
      webauthn: { rp_id: 'example.com' },
      passwordless: false,
    });
    expect(normalizeCap(cap.spec).allow_passwordless).toBe(false);
  });

  it('detects a conflict between passwordless and allow_passwordless', () => {
    const error = captureResourceError(() => parseCap({ passwordless: false, allow_passwordless: true }));
    expect(error.fieldPath).toBe('spec.passwordless');
  });

  it('refuses passwordless as the default connector without WebAuthn', () => {
    expect(captureResourceError(() => parseCap({ connector_name: 'passwordless' })).fieldPath).toBe(
      'spec.connector_name',
    );
  });
});

describe('cluster_auth_preference fields', () => {
  it('requires a WebAuthn relying party when webauthn is a second factor', () => {
    expect(captureResourceError(() => parseCap({ second_factors: ['webauthn'] })).fieldPath).toBe(
      'spec.webauthn',
    );
  });

  it.each(['example.com', 'teleport.example.com', 'localhost', 'a-b.example'])('accepts rp_id %s', (rpId) => {
    expect(rpIdProblem(rpId)).toBeUndefined();
  });

  it.each([
    ['...', 'placeholder'],
    ['example.com/path', 'has a path'],
    ['https://example.com', 'has a scheme'],
    ['example.com:443', 'has a port'],
    ['Example.com', 'lower case'],
    ['127.0.0.1', 'IP address'],
    ['exa mple.com', 'not a host name'],
    ['-bad.example', 'not a host name'],
  ])('rejects rp_id %j (%s)', (rpId, reason) => {
    const error = captureResourceError(() => parseCap({ webauthn: { rp_id: rpId } }));
    expect(error.fieldPath).toBe('spec.webauthn.rp_id');
    expect(error.message).toContain(reason);
  });

  it('accepts the fields the seed documents use', () => {
    const cap = parseCap(
      {
        type: 'local',
        second_factors: ['webauthn', 'otp'],
        webauthn: {
          rp_id: 'example.com',
          attestation_allowed_cas: [TEST_CA_PEM],
          attestation_denied_cas: [],
        },
        u2f: {
          app_id: 'https://example.com',
          facets: ['https://example.com'],
          device_attestation_cas: [TEST_CA_PEM],
        },
        require_session_mfa: 'hardware_key_touch_and_pin',
        device_trust: { mode: 'required', auto_enroll: true, ekcert_allowed_cas: [TEST_CA_PEM] },
        connector_name: 'passwordless',
        allow_passwordless: true,
        hardware_key: { piv_slot: '9d', attestation_roots: [TEST_CA_PEM] },
      },
      'pem-only',
    );
    expect(normalizeCap(cap.spec)).toEqual({
      type: 'local',
      second_factors: ['webauthn', 'otp'],
      secondFactorRequired: true,
      webauthn: { rp_id: 'example.com', attestation_allowed_cas: [TEST_CA_PEM], attestation_denied_cas: [] },
      require_session_mfa: 'hardware_key_touch_and_pin',
      device_trust: { mode: 'required', auto_enroll: true, ekcert_allowed_cas: [TEST_CA_PEM] },
      connector_name: 'passwordless',
      allow_passwordless: true,
      hardware_key: { piv_slot: '9d', attestation_roots: [TEST_CA_PEM] },
    });
  });

  it('lets WebAuthn inherit the relying party and attestation CAs from a U2F section', () => {
    const cap = parseCap({
      second_factor: 'on',
      u2f: { app_id: 'https://example.com', device_attestation_cas: [TEST_CA_PEM] },
    });
    expect(normalizeCap(cap.spec).webauthn).toEqual({
      rp_id: 'example.com',
      attestation_allowed_cas: [TEST_CA_PEM],
      attestation_denied_cas: [],
    });
  });

  it.each([
    [{ require_session_mfa: 'always' }, 'spec.require_session_mfa'],
    [{ device_trust: { mode: 'strict' } }, 'spec.device_trust.mode'],
    [{ device_trust: { auto_enroll: true } }, 'spec.device_trust.mode'],
    [{ hardware_key: { piv_slot: '9b' } }, 'spec.hardware_key.piv_slot'],
    [
      { hardware_key: { attestation_roots: ['not a pem\nat all'] } },
      'spec.hardware_key.attestation_roots[0]',
    ],
    [{ hardware_key: { attestation_roots: 'one' } }, 'spec.hardware_key.attestation_roots'],
    [{ hardware_key: { touch: true } }, 'spec.hardware_key.touch'],
    [{ require_session_mfa: 'hardware_key_always' }, 'spec.require_session_mfa'],
    [{ second_factors: ['sms'] }, 'spec.second_factors[0]'],
    [{ type: 'ldap' }, 'spec.type'],
  ])('rejects %j at %s', (spec, fieldPath) => {
    expect(captureResourceError(() => parseCap(spec)).fieldPath).toBe(fieldPath);
  });

  it('only accepts the singleton name', () => {
    const error = captureResourceError(() =>
      parseResourceJson(
        JSON.stringify({ kind: 'cap', version: 'v2', metadata: { name: 'other' }, spec: {} }),
      ),
    );
    expect(error.fieldPath).toBe('metadata.name');
  });
});

describe('role fields', () => {
  const role = (spec: Record<string, unknown>) =>
    JSON.stringify({ kind: 'role', version: 'v6', metadata: { name: 'r' }, spec });

  it('accepts trait templates in logins and rejects unsupported expressions', () => {
    expect(() =>
      parseResourceJson(
        role({ allow: { logins: ['{{internal.logins}}', 'ops-{{external["team"]}}', 'root'] } }),
      ),
    ).not.toThrow();
    const error = captureResourceError(() =>
      parseResourceJson(role({ allow: { logins: ['{{email.local(external.email)}}'] } })),
    );
    expect(error.fieldPath).toBe('spec.allow.logins[0]');
    expect(error.message).toContain('unsupported trait expression');
  });

  it('rejects rules without resources or verbs', () => {
    const error = captureResourceError(() =>
      parseResourceJson(role({ allow: { rules: [{ resources: ['role'], verbs: [] }] } })),
    );
    expect(error.fieldPath).toBe('spec.allow.rules[0].verbs');
    expect(error.message).toContain('must not be empty');
  });

  it('names a missing required field', () => {
    const error = captureResourceError(() =>
      parseResourceJson(role({ deny: { rules: [{ verbs: ['read'] }] } })),
    );
    expect(error.fieldPath).toBe('spec.deny.rules[0].resources');
    expect(error.message).toContain('required field is missing');
  });

  it('accepts require_session_mfa and device_trust_mode options', () => {
    expect(() =>
      parseResourceJson(
        role({ options: { require_session_mfa: 'hardware_key_pin', device_trust_mode: 'required' } }),
      ),
    ).not.toThrow();
    expect(
      captureResourceError(() => parseResourceJson(role({ options: { device_trust_mode: 'on' } }))).fieldPath,
    ).toBe('spec.options.device_trust_mode');
  });
});

describe('user', () => {
  it('needs at least one role and validates traits', () => {
    const user = (spec: unknown) =>
      JSON.stringify({ kind: 'user', version: 'v2', metadata: { name: 'alice' }, spec });
    expect(captureResourceError(() => parseResourceJson(user({ roles: [] }))).fieldPath).toBe('spec.roles');
    expect(
      captureResourceError(() => parseResourceJson(user({ roles: ['access'], traits: { logins: 'alice' } })))
        .fieldPath,
    ).toBe('spec.traits.logins');
  });
});

describe('resolveCaFiles', () => {
  const files: Record<string, string> = { '/ca/allowed.pem': TEST_CA_PEM, '/ca/not-a-cert.txt': 'hello\n' };
  const readFile = (path: string): string => {
    const content = files[path];
    if (content === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
    return content;
  };

  const cliCap = (allowed: string[], denied: string[] = []): Resource =>
    parseCap(
      {
        webauthn: { rp_id: 'example.com', attestation_allowed_cas: allowed, attestation_denied_cas: denied },
      },
      'pem-or-path',
    );

  it('replaces file paths with their PEM so the server accepts the document', async () => {
    const resolved = (await resolveCaFiles(
      cliCap(['/ca/allowed.pem', TEST_CA_PEM]),
      readFile,
    )) as ClusterAuthPreference;
    expect(resolved.spec.webauthn?.attestation_allowed_cas).toEqual([TEST_CA_PEM, TEST_CA_PEM]);
    expect(parseResourceJson(JSON.stringify(resolved))).toEqual(resolved);
  });

  it('inlines hardware_key.attestation_roots files, and refuses a path the server cannot read', async () => {
    const cap = parseCap({ hardware_key: { attestation_roots: ['/ca/allowed.pem'] } }, 'pem-or-path');
    const resolved = (await resolveCaFiles(cap, readFile)) as ClusterAuthPreference;
    expect(resolved.spec.hardware_key?.attestation_roots).toEqual([TEST_CA_PEM]);
    const error = await captureAsyncResourceError(() =>
      resolveCaFiles(
        parseCap({ hardware_key: { attestation_roots: ['/nope.pem'] } }, 'pem-or-path'),
        readFile,
      ),
    );
    expect(error.fieldPath).toBe('spec.hardware_key.attestation_roots[0]');
    expect(
      captureResourceError(() => parseCap({ hardware_key: { attestation_roots: ['/ca/allowed.pem'] } }))
        .fieldPath,
    ).toBe('spec.hardware_key.attestation_roots[0]');
  });

  it('names the entry of a missing file, and of every other bad file', async () => {
    const error = await captureAsyncResourceError(() =>
      resolveCaFiles(cliCap([TEST_CA_PEM, '/path/to/allowed_ca.pem'], ['/ca/not-a-cert.txt']), readFile),
    );
    expect(error.fieldPath).toBe('spec.webauthn.attestation_allowed_cas[1]');
    expect(error.message).toContain('cannot read CA file "/path/to/allowed_ca.pem": no such file');
    expect(error.issues.map((issue) => issue.fieldPath)).toEqual([
      'spec.webauthn.attestation_allowed_cas[1]',
      'spec.webauthn.attestation_denied_cas[0]',
    ]);
  });

  it('leaves other kinds and the original document untouched', async () => {
    const role = parseResourceDocuments('kind: role\nmetadata: {name: r}\nspec: {}\n')[0] as Resource;
    expect(await resolveCaFiles(role, readFile)).toBe(role);
    const cap = cliCap(['/ca/allowed.pem']);
    await resolveCaFiles(cap, readFile);
    expect((cap as ClusterAuthPreference).spec.webauthn?.attestation_allowed_cas).toEqual([
      '/ca/allowed.pem',
    ]);
  });
});
