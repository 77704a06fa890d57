// Every file below a folder with its contents, for tests that assert a refused step changed nothing there
// (KEYPORT_HOME byte for byte).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export function folderSnapshot(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) {
      const path = join(entry.parentPath, entry.name);
      files[path] = readFileSync(path, 'utf8');
    }
  }
  return files;
}
