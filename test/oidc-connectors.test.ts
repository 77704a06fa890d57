// OIDC connectors through the real CLI against a real keyport-auth (SQLite): create -f, get (never the
// client secret), rm, the secret sealed under the key-encryption key, the cap's type oidc naming the default
// connector, GetClusterInfo listing the connectors. Each refusal: its exit code, the field, nothing changed.
import { readFile, rm, writeFile } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { openConnector } from '../auth/connectors';
import { isSealed, openKeyEncryptionKey } from '../auth/secrets';
import type { OidcConnectorRow } from '../auth/storage/connectors';
import type { ClusterApi } from '../client/api';
import { connectAsAdmin, getClusterInfo, openClusterDb, runAdmin, startLabCluster } from '../lab/cluster';
import type { LabCluster } from '../lab/cluster';

const SECRET = 'lab-client-secret-7f3a9c1e';

let cluster: LabCluster;
let api: ClusterApi;
let work: string;
let files = 0;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'keyport-oidc-connectors-'));
  cluster = await startLabCluster({ clusterName: 'oidc-lab', dataDir: join(work, 'data') });
  api = await connectAsAdmin(cluster);
});

afterAll(async () => {
  api?.close();
  await cluster?.stop();
  await rm(work, { recursive: true, force: true });
});

function connectorYaml(name: string, options: { issuer?: string; secret?: string; display?: string } = {}) {
  return [
    'kind: oidc',
    'version: v3',
    'metadata:',
    `  name: ${name}`,
    'spec:',
    `  issuer_url: ${options.issuer ?? 'https://idp.example.com'}`,
    '  client_id: keyport',
    ...(options.secret === undefined ? [] : [`  client_secret: ${options.secret}`]),
    '  redirect_url: https://keyport.example.com/v1/webapi/oidc/callback',
    ...(options.display === undefined ? [] : [`  display: ${options.display}`]),
    '  claims_to_roles:',
    '    - {claim: groups, value: admins, roles: [editor]}',
    '    - {claim: groups, value: "^team-(.*)$", roles: ["$1"]}',
    '',
  ].join('\n');
}

async function create(text: string, ...flags: string[]) {
  files += 1;
  const path = join(work, `doc-${files}.yaml`);
  await writeFile(path, text);
  return runAdmin(cluster, ['create', '-f', path, ...flags]);
}

function rows(): OidcConnectorRow[] {
  const db = openClusterDb(cluster);
  try {
    return db.prepare('SELECT * FROM oidc_connectors ORDER BY name').all() as OidcConnectorRow[];
  } finally {
    db.close();
  }
}

async function storedCap(): Promise<string> {
  return (await api.admin.getResource({ kind: 'cluster_auth_preference', name: '' })).json;
}

describe('keyport admin create -f / get oidc', () => {
  it('loads a connector, seals its secret under the KEK, and get never prints it', async () => {
    const created = await create(connectorYaml('okta', { secret: SECRET, display: 'Okta' }));
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toContain('oidc "okta"');

    for (const ref of ['oidc', 'oidc/okta']) {
      const got = await runAdmin(cluster, ['get', ref]);
      expect(got.code, got.stderr).toBe(0);
      expect(got.stdout).not.toContain(SECRET);
      expect(got.stdout).not.toContain('client_secret');
      const document = parseYaml(got.stdout) as { kind: string; spec: Record<string, unknown> };
      expect(document).toMatchObject({ kind: 'oidc', spec: { client_id: 'keyport', display: 'Okta' } });
    }

    const [row] = rows();
    expect(row?.name).toBe('okta');
    expect(isSealed(row?.client_secret ?? '')).toBe(true);
    expect(row?.doc_json).not.toContain(SECRET);
    // Opened with the KEK from its file, for this connector only: the secret is whole, and nowhere in plain.
    const kek = await openKeyEncryptionKey(`${cluster.dataDir}.kek`);
    expect(openConnector(row!, kek).spec.client_secret).toBe(SECRET);
    expect(() => openConnector({ ...row!, name: 'other' }, kek)).toThrow(/does not open/);
    for (const file of ['keyport.db', 'keyport.db-wal']) {
      const bytes = await readFile(join(cluster.dataDir, file)).catch(() => Buffer.alloc(0));
      expect(bytes.includes(Buffer.from(SECRET)), file).toBe(false);
    }

    const audit = await api.admin.listAuditEvents({ type: 'resource.create', limit: 100, sinceMs: 0 });
    const event = audit.events.find((entry) => entry.message === 'oidc/okta');
    expect(event).toBeDefined();
    expect(JSON.stringify(audit.events)).not.toContain(SECRET);
  });

  it('refuses an http issuer (exit 2, spec.issuer_url) and stores nothing', async () => {
    const before = rows();
    const refused = await create(
      connectorYaml('plain', { secret: SECRET, issuer: 'http://idp.example.com' }),
    );
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/spec\.issuer_url: must be an https URL, got http/);
    expect(rows()).toEqual(before);
  });

  it('refuses a new connector without its client secret (exit 2, spec.client_secret) and stores nothing', async () => {
    const before = rows();
    const refused = await create(connectorYaml('nosecret'));
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/client_secret/);
    expect(rows()).toEqual(before);
  });

  it('refuses to replace without --force (exit 9); --force without a secret keeps the stored one', async () => {
    const before = rows();
    const refused = await create(connectorYaml('okta', { secret: 'another' }));
    expect(refused.code).toBe(9);
    expect(refused.stderr).toMatch(/already exists/);
    expect(rows()).toEqual(before);

    const replaced = await create(connectorYaml('okta', { display: 'Okta SSO' }), '--force');
    expect(replaced.code, replaced.stderr).toBe(0);
    const [row] = rows();
    expect(row?.client_secret).toBe(before[0]?.client_secret);
    expect(JSON.parse(row!.doc_json).spec.display).toBe('Okta SSO');

    const rotated = await create(
      connectorYaml('okta', { secret: 'rotated-secret', display: 'Okta' }),
      '--force',
    );
    expect(rotated.code, rotated.stderr).toBe(0);
    const kek = await openKeyEncryptionKey(`${cluster.dataDir}.kek`);
    expect(openConnector(rows()[0]!, kek).spec.client_secret).toBe('rotated-secret');
  });
});

describe('keyport admin edit oidc/NAME', () => {
  it('saves the edited connector and keeps the secret it never showed', async () => {
    const before = rows().find((row) => row.name === 'okta')!;
    const edited = await runAdmin(cluster, ['edit', 'oidc/okta'], {
      env: { EDITOR: "sed -i -e 's/display: Okta/display: Okta Workforce/'", VISUAL: undefined },
    });
    expect(edited.code, edited.stderr).toBe(0);
    const after = rows().find((row) => row.name === 'okta')!;
    expect(JSON.parse(after.doc_json).spec.display).toBe('Okta Workforce');
    expect(after.client_secret).toBe(before.client_secret);
    const restored = await runAdmin(cluster, ['edit', 'oidc/okta'], {
      env: { EDITOR: "sed -i -e 's/display: Okta Workforce/display: Okta/'", VISUAL: undefined },
    });
    expect(restored.code, restored.stderr).toBe(0);
  });
});

describe('cluster_auth_preference type oidc', () => {
  it('refuses a connector_name that names no connector (exit 2) and keeps the cap', async () => {
    const before = await storedCap();
    const refused = await create('kind: cap\nspec:\n  type: oidc\n  connector_name: nobody\n');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/No oidc connector is named "nobody"/);
    expect(refused.stderr).toMatch(/field: spec\.connector_name/);
    expect(await storedCap()).toBe(before);
  });

  it('makes a connector the default; GetClusterInfo lists the connectors, name and display only', async () => {
    const second = await create(connectorYaml('entra', { secret: 'entra-secret' }));
    expect(second.code, second.stderr).toBe(0);
    const set = await create(
      'kind: cap\nspec:\n  type: oidc\n  connector_name: okta\n  second_factors: [otp]\n',
    );
    expect(set.code, set.stderr).toBe(0);
    const info = await getClusterInfo(cluster);
    expect(info.authType).toBe('oidc');
    expect(info.connectorName).toBe('okta');
    expect(info.authConnectors).toEqual([
      { name: 'entra', display: 'entra', type: 'oidc' },
      { name: 'okta', display: 'Okta', type: 'oidc' },
    ]);
    expect(JSON.stringify(info)).not.toMatch(/secret/);
  });

  it('refuses to remove the default connector (exit 1) and keeps it; removes another', async () => {
    const refused = await runAdmin(cluster, ['rm', 'oidc/okta']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/is the cluster's default/);
    expect(rows().map((row) => row.name)).toEqual(['entra', 'okta']);

    const removed = await runAdmin(cluster, ['rm', 'oidc/entra']);
    expect(removed.code, removed.stderr).toBe(0);
    expect(rows().map((row) => row.name)).toEqual(['okta']);
    const gone = await runAdmin(cluster, ['get', 'oidc/entra']);
    expect(gone.code).toBe(9);
    expect(gone.stderr).toMatch(/Oidc connector "entra" does not exist/);
    const again = await runAdmin(cluster, ['rm', 'oidc/entra']);
    expect(again.code).toBe(9);

    const audit = await api.admin.listAuditEvents({ type: 'resource.delete', limit: 100, sinceMs: 0 });
    expect(audit.events.map((event) => event.message)).toContain('oidc/entra');
  });

  it('from the config file at start, type oidc is not checked against the connectors (created later)', async () => {
    const other = await startLabCluster({
      clusterName: 'oidc-config',
      configYaml: 'auth_service:\n  authentication:\n    type: oidc\n    connector_name: okta\n',
    });
    try {
      const info = await getClusterInfo(other);
      expect(info).toMatchObject({ authType: 'oidc', connectorName: 'okta', authConnectors: [] });
    } finally {
      await other.stop();
    }
  });

  it('takes a connector and the cap naming it in one file, in that order; the other order writes nothing', async () => {
    const before = { cap: await storedCap(), rows: rows() };
    const capFirst = await create(
      `kind: cap\nspec:\n  type: oidc\n  connector_name: azure\n---\n${connectorYaml('azure', { secret: 'a' })}`,
    );
    expect(capFirst.code).toBe(2);
    expect(capFirst.stderr).toMatch(/No oidc connector is named "azure"/);
    expect({ cap: await storedCap(), rows: rows() }).toEqual(before);

    const connectorFirst = await create(
      `${connectorYaml('azure', { secret: 'a' })}---\nkind: cap\nspec:\n  type: oidc\n  connector_name: azure\n`,
    );
    expect(connectorFirst.code, connectorFirst.stderr).toBe(0);
    expect((await getClusterInfo(cluster)).connectorName).toBe('azure');
    const local = await create('kind: cap\nspec:\n  type: local\n  second_factors: [otp]\n');
    expect(local.code, local.stderr).toBe(0);
    expect((await runAdmin(cluster, ['rm', 'oidc/azure'])).code).toBe(0);
  });

  it('with type local again, the last connector can go', async () => {
    const local = await create('kind: cap\nspec:\n  type: local\n  second_factors: [otp]\n');
    expect(local.code, local.stderr).toBe(0);
    expect((await getClusterInfo(cluster)).authType).toBe('local');
    const removed = await runAdmin(cluster, ['rm', 'oidc/okta']);
    expect(removed.code, removed.stderr).toBe(0);
    expect(rows()).toEqual([]);
    expect((await getClusterInfo(cluster)).authConnectors).toEqual([]);
  });
});
