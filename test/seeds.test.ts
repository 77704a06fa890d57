import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { normalizeCap } from '../proto/resources/schema';
import {
  parseAuthServiceAuthentication,
  parseResourceDocuments,
  ResourceError,
} from '../proto/resources/parse';
import { TEST_CA_PEM } from '../proto/resources/testing';
import {
  checkSeedSnippet,
  EXPECTED_SEED_OUTCOMES,
  EXPECTED_SNIPPET_COUNTS,
  expectedOutcome,
  extractSeedSnippets,
  extractSnippetsFromText,
  seedSnippetError,
  SEEDS_DIR,
  snippetKey,
} from './seeds';
import type { SeedSnippet } from './seeds';

const snippets = extractSeedSnippets();

function kindsOf(file: string): string[] {
  return snippets.filter((snippet) => snippet.file === file).map((snippet) => snippet.kind);
}

describe('seed snippet extraction', () => {
  it('reads every seed file', () => {
    expect(readdirSync(SEEDS_DIR).sort()).toEqual(Object.keys(EXPECTED_SNIPPET_COUNTS).sort());
  });

  it.each(Object.entries(EXPECTED_SNIPPET_COUNTS))('finds %s snippets in %s', (file, count) => {
    expect(snippets.filter((snippet) => snippet.file === file)).toHaveLength(count);
  });

  it('classifies each snippet', () => {
    expect(kindsOf('000_b81b8fafceb369b2.txt')).toEqual([
      'cluster_auth_preference',
      'cluster_auth_preference',
      'role',
      'cluster_auth_preference',
      'cluster_auth_preference',
    ]);
    expect(kindsOf('001_e62c745b3e24546c.txt')).toEqual([
      'authentication',
      'cluster_auth_preference',
      'authentication',
      'cluster_auth_preference',
    ]);
    expect(kindsOf('002_cb29b4250f9ffda4.txt')).toEqual([
      'role',
      'cluster_auth_preference',
      'cluster_auth_preference',
    ]);
    expect(kindsOf('003_6fc4b6f7d6d2e8b1.txt')).toEqual(['cluster_auth_preference', 'role', 'role', 'role']);
    expect(kindsOf('004_f497c1ce9b90cc28.txt')).toEqual([
      'cluster_auth_preference',
      'cluster_auth_preference',
    ]);
  });

  it('has an expected outcome for every snippet and no stale ones', () => {
    expect(snippets.map(snippetKey).sort()).toEqual(Object.keys(EXPECTED_SEED_OUTCOMES).sort());
  });

  it('restores indentation the scraper flattened', () => {
    const [roleSnippet] = extractSnippetsFromText(
      'flat.txt',
      'as shown here:\nkind: role\nmetadata:\nname: admin\nspec:\noptions:\nrequire_session_mfa: hardware_key_touch\nYou can also\n',
    );
    expect(roleSnippet?.yaml).toBe(
      'kind: role\nmetadata:\n  name: admin\nspec:\n  options:\n    require_session_mfa: hardware_key_touch\n',
    );
    const [capSnippet] = extractSnippetsFromText(
      'flat.txt',
      'kind: cluster_auth_preference\nspec:\nwebauthn:\nrp_id: example.com\nconnector_name: passwordless\n',
    );
    expect(capSnippet?.yaml).toBe(
      'kind: cluster_auth_preference\nspec:\n  webauthn:\n    rp_id: example.com\n  connector_name: passwordless\n',
    );
  });

  it('drops documentation diff markers and splits fenced multi-document blocks', () => {
    const found = extractSnippetsFromText(
      'fenced.txt',
      'text\n```\nkind: cap\nspec:\n  device_trust:\n    mode: "required"\n+   auto_enroll: true\n---\nkind: role\nspec: {}\n```\n',
    );
    expect(found.map((snippet) => snippet.kind)).toEqual(['cluster_auth_preference', 'role']);
    expect(found[0]?.yaml).toContain('\n    auto_enroll: true\n');
  });
});

describe('seed snippets through the CLI-then-server pipeline', () => {
  it.each(snippets.map((snippet) => [snippetKey(snippet), snippet] as const))(
    '%s gives its expected outcome',
    async (_key, snippet: SeedSnippet) => {
      const expected = expectedOutcome(snippet);
      expect(expected).toBeDefined();
      expect(await checkSeedSnippet(snippet)).toEqual(expected);
    },
  );

  it('explains each failure at its field: a placeholder or a CA file that does not exist', async () => {
    for (const snippet of snippets) {
      const expected = expectedOutcome(snippet);
      if (expected === undefined || expected.ok) continue;
      const error = await seedSnippetError(snippet);
      expect(error, snippetKey(snippet)).toBeInstanceOf(ResourceError);
      expect(error?.message.startsWith(`${expected.fieldPath}: `), snippetKey(snippet)).toBe(true);
      expect(error?.message, snippetKey(snippet)).toMatch(/placeholder|cannot read CA file/);
    }
  });

  it('accepts the CA-path snippets once their CA files exist', async () => {
    const withRealFiles = snippets.filter((snippet) => snippet.file === '001_e62c745b3e24546c.txt');
    for (const snippet of withRealFiles) {
      expect(await checkSeedSnippet(snippet, () => TEST_CA_PEM), snippetKey(snippet)).toEqual({ ok: true });
    }
  });

  it('normalizes every cluster_auth_preference that parses', () => {
    for (const snippet of snippets) {
      if (!expectedOutcome(snippet)?.ok) continue;
      if (snippet.kind === 'authentication') {
        expect(() =>
          normalizeCap(parseAuthServiceAuthentication(snippet.yaml), 'auth_service.authentication'),
        ).not.toThrow();
        continue;
      }
      for (const resource of parseResourceDocuments(snippet.yaml)) {
        if (resource.kind === 'cluster_auth_preference')
          expect(() => normalizeCap(resource.spec)).not.toThrow();
      }
    }
  });
});
