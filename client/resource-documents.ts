// Reading resource documents for `keyport admin create`: YAML (several documents split by ---) to the
// JSON the admin API takes. CA entries given as file paths are read here, on the admin's machine, and sent
// inline; full validation is the auth service's job, so the schema lives in one place.
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { KeyportError } from '../proto/errors';

export interface ResourceDocument {
  /** 1-based position in the file, for messages. */
  index: number;
  value: Record<string, unknown>;
}

/** Where a cluster_auth_preference lists CA certificates (u2f's list is Teleport's legacy spelling). */
const CA_LISTS = [
  ['webauthn', 'attestation_allowed_cas'],
  ['webauthn', 'attestation_denied_cas'],
  ['u2f', 'device_attestation_cas'],
] as const;

export function parseResourceText(text: string, source: string): ResourceDocument[] {
  const documents = parseAllDocuments(text, { prettyErrors: true });
  if (!Array.isArray(documents)) return [];
  const parsed: ResourceDocument[] = [];
  for (const [position, document] of documents.entries()) {
    const error = document.errors[0];
    if (error) {
      const line = error.linePos?.[0];
      const where = `${source}${line ? `:${line.line}:${line.col}` : ''}`;
      const elided = line ? elidedFieldPath(text, line.line) : undefined;
      if (elided !== undefined) {
        throw new KeyportError(
          'INVALID_ARGUMENT',
          `${where}: ${elided}: "..." is a documentation placeholder for elided fields; write the fields out or delete the line.`,
          { fieldPath: elided },
        );
      }
      throw new KeyportError('INVALID_ARGUMENT', `${where}: invalid YAML: ${error.message.split('\n')[0]}`);
    }
    const value: unknown = document.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) continue;
    if (typeof value !== 'object' || Array.isArray(value)) {
      throw new KeyportError('INVALID_ARGUMENT', `${source}: document ${position + 1} is not a mapping.`);
    }
    parsed.push({ index: position + 1, value: value as Record<string, unknown> });
  }
  if (parsed.length === 0) throw new KeyportError('INVALID_ARGUMENT', `${source} holds no resource.`);
  return parsed;
}

const KEY_LINE = /^\s*(?:-\s+)?([A-Za-z_][A-Za-z0-9_-]*):(?:\s|$)/;

/**
 * Documentation elides fields with a bare `...` line, which YAML cannot parse inside a mapping. When the
 * syntax error sits on such a line, the dotted path of the keys enclosing it (by indentation), e.g.
 * `metadata`; undefined otherwise.
 */
function elidedFieldPath(text: string, lineNumber: number): string | undefined {
  const lines = text.split(/\r?\n/);
  const line = lines[lineNumber - 1];
  if (line?.trim() !== '...') return undefined;
  const keys: string[] = [];
  let indent = line.length - line.trimStart().length;
  for (let index = lineNumber - 2; index >= 0 && indent > 0; index--) {
    const candidate = lines[index] ?? '';
    const candidateIndent = candidate.length - candidate.trimStart().length;
    if (candidate.trim() === '' || candidate.trimStart().startsWith('#') || candidateIndent >= indent)
      continue;
    const key = KEY_LINE.exec(candidate)?.[1];
    if (key === undefined) return undefined;
    keys.unshift(key);
    indent = candidateIndent;
  }
  return keys.length > 0 ? keys.join('.') : undefined;
}

/** An inline certificate whose body is the documentation's "..." rather than base64. */
const PLACEHOLDER_PEM = /-----BEGIN [A-Z ]+-----\s*\.\.\.\s*-----END [A-Z ]+-----/;

/**
 * Replaces CA file paths in the CA lists with the PEM they hold (relative to the file). Inline entries
 * holding the documentation's "..." body are reported first, before any file is read, as the server's
 * schema would report them.
 */
export async function inlineCaFiles(document: ResourceDocument, baseFile: string): Promise<ResourceDocument> {
  const spec = document.value.spec as Record<string, Record<string, unknown> | undefined> | undefined;
  for (const [section, list] of CA_LISTS) {
    const holder = spec?.[section];
    const entries = holder && typeof holder === 'object' ? holder[list] : undefined;
    if (!Array.isArray(entries)) continue;
    entries.forEach((entry: unknown, index) => {
      if (typeof entry === 'string' && PLACEHOLDER_PEM.test(entry)) {
        throw new KeyportError(
          'INVALID_ARGUMENT',
          `spec.${section}.${list}[${index}]: the certificate body is a documentation placeholder ("..."); paste the real PEM certificate or give the path of your CA's PEM file.`,
          { fieldPath: `spec.${section}.${list}[${index}]` },
        );
      }
    });
  }
  for (const [section, list] of CA_LISTS) {
    const holder = spec?.[section];
    const entries = holder && typeof holder === 'object' ? holder[list] : undefined;
    if (!holder || !Array.isArray(entries)) continue;
    holder[list] = await Promise.all(
      entries.map(async (entry: unknown, index) => {
        if (typeof entry !== 'string' || entry.includes('-----BEGIN')) return entry;
        const path = isAbsolute(entry) ? entry : resolve(dirname(baseFile), entry);
        try {
          return await readFile(path, 'utf8');
        } catch (error) {
          throw new KeyportError(
            'INVALID_ARGUMENT',
            `spec.${section}.${list}[${index}]: cannot read CA file "${entry}" (${(error as NodeJS.ErrnoException).code}); give the path of your CA's PEM file or paste the certificate inline.`,
            { fieldPath: `spec.${section}.${list}[${index}]` },
          );
        }
      }),
    );
  }
  return document;
}
