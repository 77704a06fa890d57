// The seed documents (scraped Teleport docs in ../shared/seeds, a sibling of the repository clone) hold
// the YAML an admin is likely to paste. This extracts every role / cluster_auth_preference resource and
// every teleport.yaml `auth_service.authentication` section from them, and records what keyport must do
// with each, so the schema test here and a CLI integration test can push the same snippets through.
import { readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  parseAuthServiceAuthentication,
  parseCapSpecValue,
  parseResourceDocuments,
  parseResourceJson,
  ResourceError,
} from '../proto/resources/parse';
import { resolveCaFiles, resolveCapSpecCaFiles } from '../proto/resources/schema';
import type { ReadTextFile } from '../proto/resources/schema';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const SEEDS_DIR = path.resolve(REPO_ROOT, '../shared/seeds');

export type SeedSnippetKind = 'cluster_auth_preference' | 'role' | 'authentication';

export interface SeedSnippet {
  file: string;
  /** Position among the snippets of its file, from 0. */
  index: number;
  yaml: string;
  kind: SeedSnippetKind;
}

export type SnippetOutcome = { ok: true } | { ok: false; fieldPath: string };

export const EXPECTED_SNIPPET_COUNTS: Readonly<Record<string, number>> = {
  '000_b81b8fafceb369b2.txt': 5,
  '001_e62c745b3e24546c.txt': 4,
  '002_cb29b4250f9ffda4.txt': 3,
  '003_6fc4b6f7d6d2e8b1.txt': 4,
  '004_f497c1ce9b90cc28.txt': 2,
};

const OK: SnippetOutcome = { ok: true };
const fails = (fieldPath: string): SnippetOutcome => ({ ok: false, fieldPath });

/**
 * What parsing (CLI side, CA paths allowed), inlining the CA files, then validating as the server does
 * must give for each snippet, keyed `file#index`. Failures are the snippets' placeholders: example CA
 * paths that do not exist, `...` certificate bodies, `...` in place of a mapping or of elided fields.
 */
export const EXPECTED_SEED_OUTCOMES: Readonly<Record<string, SnippetOutcome>> = {
  // WebAuthn with attestation CAs: entry [0] is a path (fine for the CLI), [1] is a "..." PEM body.
  '000_b81b8fafceb369b2.txt#0': fails('spec.webauthn.attestation_allowed_cas[1]'),
  '000_b81b8fafceb369b2.txt#1': OK, // require_session_mfa: true
  '000_b81b8fafceb369b2.txt#2': fails('spec.allow'), // role with `allow: ...` / `deny: ...`
  '000_b81b8fafceb369b2.txt#3': OK, // device_trust with a `+` diff marker on auto_enroll
  '000_b81b8fafceb369b2.txt#4': OK, // second_factors [webauthn] + rp_id
  '001_e62c745b3e24546c.txt#0': fails('auth_service.authentication.webauthn.attestation_allowed_cas[0]'),
  '001_e62c745b3e24546c.txt#1': fails('spec.webauthn.attestation_allowed_cas[0]'),
  '001_e62c745b3e24546c.txt#2': fails('auth_service.authentication.webauthn.attestation_allowed_cas[0]'),
  '001_e62c745b3e24546c.txt#3': fails('spec.webauthn.attestation_allowed_cas[0]'),
  '002_cb29b4250f9ffda4.txt#0': OK, // role fragment without a version
  '002_cb29b4250f9ffda4.txt#1': fails('metadata'), // `...` lines for elided fields
  '002_cb29b4250f9ffda4.txt#2': fails('metadata'),
  '003_6fc4b6f7d6d2e8b1.txt#0': OK,
  '003_6fc4b6f7d6d2e8b1.txt#1': fails('spec.allow'),
  '003_6fc4b6f7d6d2e8b1.txt#2': OK, // access-dev
  '003_6fc4b6f7d6d2e8b1.txt#3': OK, // access-prod
  '004_f497c1ce9b90cc28.txt#0': OK, // connector_name: passwordless
  '004_f497c1ce9b90cc28.txt#1': OK, // passwordless: false
};

export function snippetKey(snippet: Pick<SeedSnippet, 'file' | 'index'>): string {
  return `${snippet.file}#${snippet.index}`;
}

export function expectedOutcome(snippet: SeedSnippet): SnippetOutcome | undefined {
  return EXPECTED_SEED_OUTCOMES[snippetKey(snippet)];
}

// ---------------------------------------------------------------------------------------------------
// Extraction

const FENCE = /^(\s*)```/;
const RESOURCE_START = /^kind:\s*(role|cluster_auth_preference|cap)\s*(?:#.*)?$/;
const AUTH_SERVICE_START = /^auth_service:\s*(?:#.*)?$/;
const KEY_LINE = /^([A-Za-z_][A-Za-z0-9_-]*):(?:\s+(.*))?$/;
/** A line that can belong to a YAML snippet in plain (unfenced) text; prose has spaces before its colons. */
const YAML_LINE = /^\s*(?:#.*|-(?:\s.*)?|\.\.\.|[A-Za-z_][A-Za-z0-9_.-]*:(?:\s.*)?)$/;

interface TextBlock {
  fenced: boolean;
  lines: string[];
}

function splitFencedBlocks(text: string): TextBlock[] {
  const blocks: TextBlock[] = [];
  let current: TextBlock = { fenced: false, lines: [] };
  let fenceIndent = 0;
  for (const line of text.split(/\r?\n/)) {
    const fence = FENCE.exec(line);
    if (fence === null) {
      current.lines.push(
        current.fenced ? line.slice(Math.min(fenceIndent, line.length - line.trimStart().length)) : line,
      );
      continue;
    }
    blocks.push(current);
    fenceIndent = fence[1]?.length ?? 0;
    current = { fenced: !current.fenced, lines: [] };
  }
  blocks.push(current);
  return blocks.filter((block) => block.lines.length > 0);
}

function classify(lines: readonly string[]): SeedSnippetKind | undefined {
  for (const line of lines) {
    const resource = RESOURCE_START.exec(line);
    if (resource?.[1] === 'role') return 'role';
    if (resource !== null) return 'cluster_auth_preference';
  }
  const authService = lines.findIndex((line) => AUTH_SERVICE_START.test(line));
  const hasAuthentication = lines
    .slice(authService + 1)
    .some((line) => /^\s+authentication:\s*(?:#.*)?$/.test(line));
  return authService >= 0 && hasAuthentication ? 'authentication' : undefined;
}

function splitYamlDocuments(lines: readonly string[]): string[][] {
  const documents: string[][] = [[]];
  for (const line of lines) {
    if (/^---\s*$/.test(line)) documents.push([]);
    else documents[documents.length - 1]?.push(line);
  }
  return documents;
}

/** Documentation diffs mark added lines with a leading `+`; the snippet means the line without it. */
function dropDiffMarkers(lines: readonly string[]): string[] {
  return lines.map((line) => line.replace(/^\+(?=\s)/, ' '));
}

function trimBlankEdges(lines: readonly string[]): string[] {
  let start = 0;
  let end = lines.length;
  while (start < end && lines[start]?.trim() === '') start++;
  while (end > start && lines[end - 1]?.trim() === '') end--;
  return lines.slice(start, end);
}

function snippetsFromFencedBlock(lines: readonly string[]): string[][] {
  return splitYamlDocuments(lines).map((document) => trimBlankEdges(dropDiffMarkers(document)));
}

/**
 * In plain text a snippet is a run of YAML-looking lines that holds a resource start (`kind: role`, ...)
 * or `auth_service:`; it begins at that line (with the comments just above it) and ends where prose does.
 */
function snippetsFromPlainText(lines: readonly string[]): string[][] {
  const snippets: string[][] = [];
  let index = 0;
  while (index < lines.length) {
    const line = lines[index] ?? '';
    if (!RESOURCE_START.test(line) && !AUTH_SERVICE_START.test(line)) {
      index++;
      continue;
    }
    let start = index;
    while (start > 0 && /^#/.test(lines[start - 1] ?? '')) start--;
    let end = index + 1;
    while (end < lines.length) {
      const next = lines[end] ?? '';
      if (next.trim() === '' || !YAML_LINE.test(next) || /^---\s*$/.test(next)) break;
      if (RESOURCE_START.test(next) || AUTH_SERVICE_START.test(next)) break;
      end++;
    }
    snippets.push(reindentIfFlattened(lines.slice(start, end)));
    index = end;
  }
  return snippets;
}

// Which keys nest under which: enough of the resource model to restore snippets whose indentation the
// scraper flattened (every line at column 0). Covers the fields the seed documents use.
const CHILD_KEYS: Readonly<Record<string, readonly string[]>> = {
  metadata: ['name', 'description', 'labels'],
  spec: [
    'options',
    'allow',
    'deny',
    'type',
    'second_factors',
    'second_factor',
    'webauthn',
    'u2f',
    'require_session_mfa',
    'device_trust',
    'connector_name',
    'allow_passwordless',
    'passwordless',
    'hardware_key',
  ],
  options: ['max_session_ttl', 'require_session_mfa', 'device_trust_mode'],
  allow: ['logins', 'node_labels', 'rules'],
  deny: ['logins', 'node_labels', 'rules'],
  webauthn: ['rp_id', 'attestation_allowed_cas', 'attestation_denied_cas'],
  u2f: ['app_id', 'facets', 'device_attestation_cas'],
  device_trust: ['mode', 'auto_enroll'],
  hardware_key: ['piv_slot'],
};

function reindentIfFlattened(lines: readonly string[]): string[] {
  const flattened = lines.every((line) => line.trim() === '' || !/^\s/.test(line));
  if (!flattened) return [...lines];
  const openContainers: string[] = [];
  return lines.map((line) => {
    const key = KEY_LINE.exec(line);
    if (key?.[1] !== undefined) {
      const name = key[1];
      while (
        openContainers.length > 0 &&
        !CHILD_KEYS[openContainers[openContainers.length - 1] ?? '']?.includes(name)
      ) {
        openContainers.pop();
      }
      const indented = '  '.repeat(openContainers.length) + line;
      const value = (key[2] ?? '').replace(/#.*$/, '').trim();
      if (value === '' && CHILD_KEYS[name] !== undefined) openContainers.push(name);
      return indented;
    }
    // Comments, list items and "..." elisions belong to the innermost open mapping.
    return '  '.repeat(openContainers.length) + line;
  });
}

export function extractSnippetsFromText(file: string, text: string): SeedSnippet[] {
  const snippets: SeedSnippet[] = [];
  for (const block of splitFencedBlocks(text)) {
    const candidates = block.fenced
      ? snippetsFromFencedBlock(block.lines)
      : snippetsFromPlainText(block.lines);
    for (const lines of candidates) {
      const kind = classify(lines);
      if (kind !== undefined)
        snippets.push({ file, index: snippets.length, yaml: `${lines.join('\n')}\n`, kind });
    }
  }
  return snippets;
}

export function extractSeedSnippets(seedsDir: string = SEEDS_DIR): SeedSnippet[] {
  return readdirSync(seedsDir)
    .sort()
    .flatMap((file) => extractSnippetsFromText(file, readFileSync(path.join(seedsDir, file), 'utf8')));
}

// ---------------------------------------------------------------------------------------------------
// What keyport does with a snippet

const readTextFile: ReadTextFile = (filePath) => readFile(filePath, 'utf8');

/**
 * The pipeline a snippet goes through with the real CLI and server: parse with CA paths allowed,
 * inline the CA files, then validate as the server does (PEM only). Returns the error it stops at.
 */
export async function seedSnippetError(
  snippet: SeedSnippet,
  readCaFile: ReadTextFile = readTextFile,
): Promise<ResourceError | undefined> {
  try {
    if (snippet.kind === 'authentication') {
      const prefix = 'auth_service.authentication';
      const spec = parseAuthServiceAuthentication(snippet.yaml, { caEntries: 'pem-or-path' });
      const resolved = await resolveCapSpecCaFiles(spec, readCaFile, prefix);
      parseCapSpecValue(resolved, { caEntries: 'pem-only' }, prefix);
    } else {
      const resources = parseResourceDocuments(snippet.yaml, { caEntries: 'pem-or-path' });
      for (const resource of resources) {
        parseResourceJson(JSON.stringify(await resolveCaFiles(resource, readCaFile)));
      }
    }
    return undefined;
  } catch (error) {
    if (error instanceof ResourceError) return error;
    throw error;
  }
}

export async function checkSeedSnippet(
  snippet: SeedSnippet,
  readCaFile: ReadTextFile = readTextFile,
): Promise<SnippetOutcome> {
  const error = await seedSnippetError(snippet, readCaFile);
  return error === undefined ? { ok: true } : { ok: false, fieldPath: error.fieldPath };
}
