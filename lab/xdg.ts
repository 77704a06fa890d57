// A private freedesktop.org setup for keyport:// links (LAB.md "Deep links (xdg-open)"): the handler's
// desktop entry in a private XDG_DATA_HOME/applications, made the default for x-scheme-handler/keyport by
// `xdg-mime default` in a private XDG_CONFIG_HOME (its mimeapps.list). The machine's own XDG folders are
// never touched. Used by `npm start` and the deep-link tests; run xdg-open with `env` to use it.
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DESKTOP_FILE_NAME, desktopEntry, LINK_MIME_TYPE } from '../main/browser/desktop-entry';
import { repoRoot } from './cluster';

const run = promisify(execFile);

export interface PrivateXdg {
  /** HOME, XDG_DATA_HOME, XDG_CONFIG_HOME and XDG_DATA_DIRS pointing into `dir` (and /usr/share). */
  env: Record<string, string>;
  desktopFile: string;
}

/** Installs `command … %u` as the keyport:// handler under `dir`; resolves once xdg-mime reports it. */
export async function installLinkHandler(dir: string, command: readonly string[]): Promise<PrivateXdg> {
  const dataHome = join(dir, 'data');
  const configHome = join(dir, 'config');
  const applications = join(dataHome, 'applications');
  await mkdir(applications, { recursive: true, mode: 0o700 });
  await mkdir(configHome, { recursive: true, mode: 0o700 });
  const desktopFile = join(applications, DESKTOP_FILE_NAME);
  await writeFile(desktopFile, desktopEntry(command), { mode: 0o600 });
  const env = {
    HOME: dir,
    XDG_DATA_HOME: dataHome,
    XDG_CONFIG_HOME: configHome,
    XDG_DATA_DIRS: `${dataHome}:/usr/share`,
  };
  const xdgEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env };
  await run('xdg-mime', ['default', DESKTOP_FILE_NAME, LINK_MIME_TYPE], { env: xdgEnv });
  const { stdout } = await run('xdg-mime', ['query', 'default', LINK_MIME_TYPE], { env: xdgEnv });
  if (stdout.trim() !== DESKTOP_FILE_NAME) {
    throw new Error(
      `xdg-mime did not take ${DESKTOP_FILE_NAME} as the keyport:// handler (it says "${stdout.trim()}").`,
    );
  }
  return { env, desktopFile };
}

/**
 * The keyport:// handler in a checkout: `keyport-connect open-url` for the app of `keyportHome` (the entry
 * carries KEYPORT_HOME, since a desktop starts it without the demo's environment).
 */
export function checkoutLinkHandler(keyportHome: string): string[] {
  return [
    'env',
    `KEYPORT_HOME=${keyportHome}`,
    process.execPath,
    join(repoRoot, 'bin', 'keyport-connect.mjs'),
    'open-url',
  ];
}
