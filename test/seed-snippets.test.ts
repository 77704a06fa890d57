// Every cluster_auth_preference and role snippet of the seed documents through the real
// `keyport admin create -f FILE --force`, and every teleport.yaml `auth_service.authentication` snippet
// through `keyport-auth start --config`: what test/seeds.ts expects of each, now end to end. A snippet that
// loads is stored as written; a snippet with a placeholder is refused naming its field, and nothing changes.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { TEST_CA_PEM } from '../proto/resources/testing';
import type { ClusterApi } from '../client/api';
import { connectAsAdmin, getClusterInfo, runAdmin, startLabCluster } from '../lab/cluster';
import type { LabCluster } from '../lab/cluster';
import { expectedOutcome, extractSeedSnippets, snippetKey } from './seeds';
import type { SeedSnippet } from './seeds';

interface Document {
  kind: string;
  version?: string;
  metadata: { name: string };
  spec: Record<string, unknown>;
}

const snippets = extractSeedSnippets();
const resourceSnippets = snippets.filter((snippet) => snippet.kind !== 'authentication');
const authenticationSnippets = snippets.filter((snippet) => snippet.kind === 'authentication');

/** `000_….txt#2 role: is refused naming spec.allow` — the test's name says what must happen. */
function title(snippet: SeedSnippet): string {
  const expected = expectedOutcome(snippet);
  const outcome =
    expected === undefined
      ? 'has an expected outcome in test/seeds.ts'
      : snippet.kind === 'authentication'
        ? expected.ok
          ? 'keyport-auth --config starts with it'
          : `keyport-auth --config refuses to start, naming ${expected.fieldPath}`
        : expected.ok
          ? 'loads and is stored as written'
          : `is refused naming ${expected.fieldPath}, and nothing changes`;
  return `${snippetKey(snippet)} ${snippet.kind}: ${outcome}`;
}

let cluster: LabCluster;
/** For looking at stored state before and after a refused create without a CLI process per look. */
let api: ClusterApi;
let work: string;
let fileCount = 0;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'keyport-seeds-'));
  cluster = await startLabCluster({ clusterName: 'seeds', dataDir: join(work, 'data') });
  api = await connectAsAdmin(cluster);
});

afterAll(async () => {
  api?.close();
  await cluster?.stop();
  await rm(work, { recursive: true, force: true });
});

async function writeInDir(dir: string, name: string, text: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

/** Each file in its own directory, so relative CA paths resolve next to it. */
function writeYaml(text: string): Promise<string> {
  fileCount += 1;
  return writeInDir(join(work, `file-${fileCount}`), 'resource.yaml', text);
}

async function adminGet(ref: string): Promise<string> {
  const result = await runAdmin(cluster, ['get', ref]);
  expect(result.code, result.stderr).toBe(0);
  return result.stdout;
}

/** The stored documents of a kind, exactly as the auth service holds them. */
async function storedState(kind: 'role' | 'cluster_auth_preference'): Promise<string[]> {
  return (await api.admin.listResources({ kind })).resources.map((resource) => resource.json);
}

async function storedCap(): Promise<Document> {
  return parseYaml(await adminGet('cap')) as Document;
}

describe('seed role and cluster_auth_preference snippets through keyport admin create -f --force', () => {
  it('finds the snippets to run', () => {
    expect(resourceSnippets.length).toBe(16);
    expect(authenticationSnippets.length).toBe(2);
  });

  it.each(resourceSnippets.map((snippet) => [title(snippet), snippet] as const))(
    '%s',
    async (_title, snippet) => {
      const expected = expectedOutcome(snippet);
      expect(expected).toBeDefined();
      const kind = snippet.kind === 'role' ? 'role' : 'cluster_auth_preference';
      const before = await storedState(kind);
      const result = await runAdmin(cluster, ['create', '-f', await writeYaml(snippet.yaml), '--force']);

      if (expected?.ok) {
        expect(result.code, result.stderr).toBe(0);
        expect(result.stdout).toMatch(/has been created or updated/);
        const written = parseYaml(snippet.yaml) as Document;
        const stored = parseYaml(
          await adminGet(snippet.kind === 'role' ? `role/${written.metadata.name}` : 'cap'),
        ) as Document;
        expect(stored.kind).toBe(snippet.kind);
        expect(stored.metadata.name).toBe(written.metadata.name);
        expect(stored.spec).toEqual(written.spec);
        if (written.version) expect(stored.version).toBe(written.version);
      } else {
        expect(result.code, result.stdout + result.stderr).toBe(2);
        expect(result.stderr).toContain(`${expected?.fieldPath}: `);
        expect(result.stderr).toMatch(/placeholder|cannot read CA file/);
        expect(result.stdout).not.toMatch(/has been/);
        expect(await storedState(kind)).toEqual(before);
      }
    },
  );

  it('loads the CA-path snippets once the CA files exist, relative to the YAML file, and stores the PEM inline', async () => {
    for (const snippet of resourceSnippets.filter((s) => s.yaml.includes('"/path/to/'))) {
      const dir = join(work, `real-ca-${snippetKey(snippet).replace('#', '-')}`);
      for (const name of ['allowed_ca.pem', 'denied_ca.pem', 'u2f_attestation_ca.pem'])
        await writeInDir(dir, name, TEST_CA_PEM);
      // Entry [1] of the first snippet is an inline "..." body; a real certificate goes there instead.
      const yaml = snippet.yaml
        .replaceAll('"/path/to/', '"./')
        .replace(
          /\|\n(\s+)-----BEGIN CERTIFICATE-----\n\s+\.\.\.\n\s+-----END CERTIFICATE-----/g,
          (_match, indent: string) => `|\n${TEST_CA_PEM.trimEnd().replaceAll(/^/gm, indent)}`,
        );
      const file = await writeInDir(dir, 'cap.yaml', yaml);
      const result = await runAdmin(cluster, ['create', '-f', file, '--force']);
      expect(result.code, `${snippetKey(snippet)}: ${result.stderr}`).toBe(0);

      const webauthn = (await storedCap()).spec.webauthn as Record<string, string[]>;
      expect(webauthn.attestation_allowed_cas?.length).toBeGreaterThan(0);
      for (const pem of [
        ...(webauthn.attestation_allowed_cas ?? []),
        ...(webauthn.attestation_denied_cas ?? []),
      ])
        expect(pem.trim()).toBe(TEST_CA_PEM.trim());
      expect(JSON.stringify(webauthn)).not.toContain('.pem');
    }
  });
});

describe('legacy second_factor', () => {
  it.each([
    ['on', ['webauthn', 'otp']],
    ['optional', ['webauthn', 'otp']],
    ['otp', ['otp']],
    ['webauthn', ['webauthn']],
    ['off', []],
  ] as const)(
    'second_factor: %s loads, is stored as written and means second_factors %j',
    async (value, factors) => {
      const file = await writeYaml(
        `kind: cluster_auth_preference\nversion: v2\nmetadata:\n  name: cluster-auth-preference\nspec:\n  type: local\n  second_factor: ${value}\n  webauthn:\n    rp_id: example.com\n`,
      );
      const result = await runAdmin(cluster, ['create', '-f', file, '--force']);
      expect(result.code, result.stderr).toBe(0);
      expect((await storedCap()).spec.second_factor).toBe(value);
      // What the cluster acts on and tells clients before they sign in.
      const info = await getClusterInfo(cluster);
      expect([...info.secondFactors].sort()).toEqual([...factors].sort());
      expect(info.webauthnRpId).toBe('example.com');
    },
  );

  it('refuses second_factor: webauthn without webauthn.rp_id, naming spec.webauthn, and keeps the stored cap', async () => {
    const before = await storedState('cluster_auth_preference');
    const file = await writeYaml(
      'kind: cluster_auth_preference\nversion: v2\nmetadata:\n  name: cluster-auth-preference\nspec:\n  second_factor: webauthn\n',
    );
    const result = await runAdmin(cluster, ['create', '-f', file, '--force']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/spec\.webauthn: required when the second factors include webauthn/);
    expect(await storedState('cluster_auth_preference')).toEqual(before);
  });
});

describe('teleport.yaml auth_service.authentication snippets through keyport-auth start --config', () => {
  it.each(authenticationSnippets.map((snippet) => [title(snippet), snippet] as const))(
    '%s',
    async (_title, snippet) => {
      const expected = expectedOutcome(snippet);
      expect(expected?.ok).toBe(false);
      const dataDir = join(work, `auth-${snippetKey(snippet).replace('#', '-')}`);
      const start = startLabCluster({ clusterName: 'seed-config', dataDir, configYaml: snippet.yaml });
      const error = await start.then(
        async (started) => {
          await started.stop();
          return new Error('keyport-auth started');
        },
        (failure: Error) => failure,
      );
      expect(error.message).toMatch(/keyport-auth exited with 2 before it was ready/);
      expect(error.message).toContain(`keyport-auth: ${expected?.ok === false ? expected.fieldPath : ''}: `);
      expect(error.message).toMatch(/cannot read CA file "\/path\/to\/[a-z0-9_]+\.pem": no such file/);
    },
  );

  it.each(authenticationSnippets.map((snippet) => [snippetKey(snippet), snippet] as const))(
    '%s starts once its CA files exist, with that cap, the PEM stored inline',
    async (key, snippet) => {
      const dir = join(work, `auth-real-${key.replace('#', '-')}`);
      const caFile = await writeInDir(dir, 'attestation-ca.pem', TEST_CA_PEM);
      const yaml = snippet.yaml.replaceAll(/"\/path\/to\/[a-z0-9_]+\.pem"/g, JSON.stringify(caFile));
      const started = await startLabCluster({
        clusterName: 'seed-config',
        dataDir: join(dir, 'data'),
        configYaml: yaml,
      });
      try {
        const cap = parseYaml((await runAdmin(started, ['get', 'cap'])).stdout) as Document;
        const expectedSpec = (
          parseYaml(yaml) as { auth_service: { authentication: Record<string, unknown> } }
        ).auth_service.authentication;
        const webauthn = cap.spec.webauthn as Record<string, string[]>;
        expect(webauthn.attestation_allowed_cas).toEqual([TEST_CA_PEM]);
        expect(webauthn.attestation_denied_cas).toEqual([TEST_CA_PEM]);
        if (expectedSpec.u2f)
          expect((cap.spec.u2f as Record<string, string[]>).device_attestation_cas).toEqual([TEST_CA_PEM]);
        expect(cap.spec.second_factor).toBe('on');
        expect(cap.spec.type).toBe('local');
        const info = await getClusterInfo(started);
        expect([...info.secondFactors].sort()).toEqual(['otp', 'webauthn']);
        expect(info.webauthnRpId).toBe('example.com');
      } finally {
        await started.stop();
      }
    },
  );
});
