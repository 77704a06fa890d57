// What both hosts need to serve dist/renderer: the content types, and a file lookup that cannot leave the
// folder. Each host parses its own request form (app://keyport/… or an HTTP request target) into decoded
// path segments, refusing separators and dot segments; this checks the result again after symlinks.
// fs.promises is read through the fs object at call time: Electron patches its members to read in app.asar.
import { promises as fs } from 'node:fs';
import { extname, isAbsolute, join, relative, sep } from 'node:path';

const MIME_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
};

export function mimeType(path: string): string {
  return MIME_TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream';
}

/** `path` lies strictly below `root` (both absolute). */
export function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel);
}

/**
 * The real path of the regular file at `segments` below `root`, or why there is none: a path that
 * leaves the root, also through a symbolic link, is refused like a missing file.
 */
export async function fileInside(
  root: string,
  segments: readonly string[],
): Promise<{ path: string } | { refused: 'outside' | 'missing' | 'not a file' | 'links outside' }> {
  const realRoot = await fs.realpath(root);
  const candidate = join(realRoot, ...segments);
  if (!isInside(realRoot, candidate)) return { refused: 'outside' };
  let realFile: string;
  try {
    realFile = await fs.realpath(candidate);
    if (!(await fs.stat(realFile)).isFile()) return { refused: 'not a file' };
  } catch {
    return { refused: 'missing' };
  }
  if (!isInside(realRoot, realFile)) return { refused: 'links outside' };
  return { path: realFile };
}
