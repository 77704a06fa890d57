import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, chmod, mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { assertValidKeyId, keyNotFound, KeyStoreError } from './key-store';
import type { KeyStore } from './key-store';

const KEY_FILE_MODE = 0o600;
const KEY_DIR_MODE = 0o700;
const KEY_FILE_SUFFIX = '.pem';
// POSIX permission bits mean nothing on Windows (stat reports 0o666), so the checks are POSIX-only.
const checksPermissions = process.platform !== 'win32';

/**
 * Private keys as plain PEM files: only for headless machines, by explicit `--keystore file` opt-in
 * (docs/architecture.md invariant 2). One file per id, 0600 in a 0700 directory, like ~/.ssh.
 */
export class FileStore implements KeyStore {
  readonly kind = 'file';

  constructor(readonly dir: string) {}

  keyPath(id: string): string {
    assertValidKeyId(id);
    return join(this.dir, fileNameForId(id) + KEY_FILE_SUFFIX);
  }

  /**
   * What a put would meet, without writing: an existing key folder must be a folder this user can write
   * in; a missing one is made by the first put, in its nearest existing parent, which must be writable.
   */
  async ready(): Promise<void> {
    for (let dir = this.dir; ; dir = dirname(dir)) {
      try {
        const stats = await stat(dir);
        if (!stats.isDirectory()) throw new Error(`${dir} is not a directory`);
        await access(dir, constants.W_OK | constants.X_OK);
        return;
      } catch (error) {
        if (errorCode(error) !== 'ENOENT' || dirname(dir) === dir) {
          throw ioError(`The private key directory ${this.dir} cannot take a key`, error);
        }
      }
    }
  }

  async put(id: string, privateKeyPem: string): Promise<void> {
    const target = this.keyPath(id);
    await this.ensurePrivateDir();
    // Created 0600 from the start (never chmod-ed after the key is in it) and renamed into place,
    // so no reader ever sees a half-written or briefly world-readable key.
    const temporary = join(this.dir, `.${fileNameForId(id)}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      const handle = await open(temporary, 'wx', KEY_FILE_MODE);
      try {
        await handle.writeFile(privateKeyPem, 'utf8');
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temporary, target);
    } catch (error) {
      await unlink(temporary).catch(() => {});
      throw ioError(`Could not write private key file ${target}`, error);
    }
  }

  async get(id: string): Promise<string> {
    const path = this.keyPath(id);
    let handle;
    try {
      // O_NOFOLLOW: a symlink planted in the key directory must not redirect the read.
      handle = await open(path, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
    } catch (error) {
      if (errorCode(error) === 'ENOENT') throw keyNotFound(id, this.dir);
      throw ioError(`Could not open private key file ${path}`, error);
    }
    try {
      const stats = await handle.stat();
      if (!stats.isFile()) throw new KeyStoreError('KEYSTORE_IO', `${path} is not a regular file.`);
      if (checksPermissions && (stats.mode & 0o077) !== 0) {
        const mode = (stats.mode & 0o777).toString(8).padStart(4, '0');
        throw new KeyStoreError(
          'KEYSTORE_IO',
          `Private key file ${path} can be accessed by other users (mode ${mode}); refusing to use it. ` +
            `Run: chmod 600 '${path}'`,
        );
      }
      return await handle.readFile('utf8');
    } catch (error) {
      if (error instanceof KeyStoreError) throw error;
      throw ioError(`Could not read private key file ${path}`, error);
    } finally {
      await handle.close();
    }
  }

  async delete(id: string): Promise<boolean> {
    const path = this.keyPath(id);
    try {
      await unlink(path);
      return true;
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return false;
      throw ioError(`Could not delete private key file ${path}`, error);
    }
  }

  private async ensurePrivateDir(): Promise<void> {
    try {
      await mkdir(this.dir, { recursive: true, mode: KEY_DIR_MODE });
      // mkdir leaves an existing directory's mode alone, and its own mode is filtered by the umask.
      if (checksPermissions) await chmod(this.dir, KEY_DIR_MODE);
    } catch (error) {
      throw ioError(`Could not create the private key directory ${this.dir} (mode 0700)`, error);
    }
  }
}

/**
 * Ids may contain characters that are unsafe in file names ("/", "..", a leading "."): keep
 * [A-Za-z0-9._@-], percent-encode everything else and a leading dot.
 */
export function fileNameForId(id: string): string {
  const encoded = Array.from(Buffer.from(id, 'utf8'))
    .map((byte) => {
      const char = String.fromCharCode(byte);
      return /[A-Za-z0-9._@-]/.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    })
    .join('');
  return encoded.startsWith('.') ? `%2E${encoded.slice(1)}` : encoded;
}

function errorCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : undefined;
}

function ioError(what: string, cause: unknown): KeyStoreError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new KeyStoreError('KEYSTORE_IO', `${what}: ${reason}`, { cause });
}
