// Reading resource documents for `keyport admin create` and `edit`: the YAML is parsed and validated here
// with the same schema the auth service uses (proto/resources), so every document of a file is checked
// before any is sent. CA entries given as file paths are read here, on the admin's machine, relative to
// the YAML file, and sent inline.
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { KeyportError } from '../proto/errors';
import { parseResourceDocuments, resolveCaFiles, ResourceError } from '../proto/resources';
import type { Resource } from '../proto/resources';

function invalid(source: string, error: unknown): never {
  if (error instanceof ResourceError) {
    throw new KeyportError('INVALID_ARGUMENT', `${source}: ${error.message}`, { fieldPath: error.fieldPath });
  }
  throw error;
}

/** Every document in `text`, validated, with CA files inlined; `baseFile` anchors relative CA paths. */
export async function loadResourceDocuments(
  text: string,
  source: string,
  baseFile: string,
): Promise<Resource[]> {
  let documents: Resource[];
  try {
    documents = parseResourceDocuments(text, { caEntries: 'pem-or-path' });
  } catch (error) {
    invalid(source, error);
  }
  if (documents.length === 0) throw new KeyportError('INVALID_ARGUMENT', `${source} holds no resource.`);
  const readCaFile = (path: string) =>
    readFile(isAbsolute(path) ? path : resolve(dirname(baseFile), path), 'utf8');
  const resolved: Resource[] = [];
  for (const [index, document] of documents.entries()) {
    try {
      resolved.push(await resolveCaFiles(document, readCaFile));
    } catch (error) {
      const prefixed =
        error instanceof ResourceError && documents.length > 1
          ? new ResourceError(
              error.issues.map((issue) => ({
                ...issue,
                fieldPath: `documents[${index}].${issue.fieldPath}`,
              })) as [ResourceError['issues'][number]],
            )
          : error;
      invalid(source, prefixed);
    }
  }
  return resolved;
}
