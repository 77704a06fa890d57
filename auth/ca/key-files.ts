// File persistence for CA material: owner-only permissions, and writes that are never seen half-done.
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { CaError, InsecureCaFileError } from './errors';

export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIRECTORY_MODE = 0o700;
const GROUP_OR_OTHER_ACCESS = 0o077;
const GROUP_OR_OTHER_WRITE = 0o022;

// Windows has no POSIX modes (stat reports 0o666 for every writable file); access there is governed by
// ACLs that Node cannot inspect, so the checks would refuse every file.
const POSIX_MODES = process.platform !== 'win32';

function isErrnoCode(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}

/**
 * Creates the directory owner-only, or checks an existing one: a directory others can write to would let
 * them swap the key files under us.
 */
export async function ensurePrivateDirectory(path: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: PRIVATE_DIRECTORY_MODE });
  const info = await stat(path);
  if (!info.isDirectory()) throw new CaError('INTERNAL', `${path} is not a directory`);
  if (POSIX_MODES && (info.mode & GROUP_OR_OTHER_WRITE) !== 0) throw new InsecureCaFileError(path, info.mode);
}

/**
 * Reads a file that must be private to its owner, or returns undefined when it does not exist. The mode is
 * checked on the opened descriptor, so the file checked is the file read.
 */
export async function readPrivateFile(path: string): Promise<string | undefined> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    if (isErrnoCode(error, 'ENOENT')) return undefined;
    throw error;
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new CaError('INTERNAL', `${path} is not a regular file`);
    if (POSIX_MODES && (info.mode & GROUP_OR_OTHER_ACCESS) !== 0)
      throw new InsecureCaFileError(path, info.mode);
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

/** Reads a file that may be public (a certificate), or returns undefined when it does not exist. */
export async function readPublicFile(path: string): Promise<string | undefined> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    if (isErrnoCode(error, 'ENOENT')) return undefined;
    throw error;
  }
  try {
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

async function syncDirectory(path: string): Promise<void> {
  if (!POSIX_MODES) return; // directories cannot be opened for fsync on Windows
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Writes `contents` to a fresh temporary file beside `path` (created with `mode`, fsynced, closed) and
 * returns its path, for the caller to link or rename into place.
 */
async function writeTemporary(path: string, contents: string, mode: number): Promise<string> {
  const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temporary, 'wx', mode);
  try {
    await handle.writeFile(contents, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  return temporary;
}

async function removeTemporary(temporary: string): Promise<void> {
  await unlink(temporary).catch((error: unknown) => {
    if (!isErrnoCode(error, 'ENOENT')) throw error;
  });
}

/**
 * Writes `contents` to `path` unless the file already exists, never leaving a partial file behind: the
 * data goes to a temporary file that is then hard-linked into place. The link fails if `path` exists, so
 * when two processes start on one data directory at once, exactly one key wins and the other process
 * loads it. Returns whether this call created the file.
 */
export async function writeFileIfAbsent(path: string, contents: string, mode: number): Promise<boolean> {
  const temporary = await writeTemporary(path, contents, mode);
  try {
    try {
      await link(temporary, path);
    } catch (error) {
      if (isErrnoCode(error, 'EEXIST')) return false;
      if (!isErrnoCode(error, 'EPERM') && !isErrnoCode(error, 'ENOTSUP') && !isErrnoCode(error, 'ENOSYS')) {
        throw error;
      }
      // Filesystems without hard links: rename is still atomic, only the no-clobber guarantee is lost.
      await rename(temporary, path);
    }
    await syncDirectory(dirname(path));
    return true;
  } finally {
    await removeTemporary(temporary);
  }
}

/**
 * Replaces `path` with `contents` (owner-only): written to a temporary file and renamed over the old one,
 * so a reader sees the old file or the new one, never a part.
 */
export async function replacePrivateFile(path: string, contents: string): Promise<void> {
  const temporary = await writeTemporary(path, contents, PRIVATE_FILE_MODE);
  try {
    await rename(temporary, path);
  } catch (error) {
    await removeTemporary(temporary);
    throw error;
  }
  await syncDirectory(dirname(path));
}
