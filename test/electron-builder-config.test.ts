// electron-builder.yml, checked offline the way electron-builder checks it before a build: app-builder-lib's
// own getConfig (loads the YAML, resolves `extends`) and validateConfiguration (its JSON schema). A build
// itself downloads Electron, so it cannot run here.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Configuration } from 'app-builder-lib';
import { LinuxTargetHelper } from 'app-builder-lib/out/targets/LinuxTargetHelper.js';
import { getConfig, validateConfiguration } from 'app-builder-lib/out/util/config/config.js';
import type { DebugLogger } from 'builder-util';
import { afterAll, describe, expect, it, vi } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const configPath = join(root, 'electron-builder.yml');
const yaml = readFileSync(configPath, 'utf8');
// validateConfiguration only asks a logger whether it records the schema error.
const quietLogger = { isEnabled: false, add: () => {} } as unknown as DebugLogger;

const temporary: string[] = [];
afterAll(() => {
  for (const dir of temporary) rmSync(dir, { recursive: true, force: true });
});

async function loadConfig(projectDir: string, path: string): Promise<Configuration> {
  return getConfig(projectDir, path, null);
}

/** The shipped YAML with one edit, in a project of its own. */
async function validateEdited(edit: (text: string) => string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'keyport-builder-'));
  temporary.push(dir);
  const edited = edit(yaml);
  expect(edited).not.toBe(yaml);
  writeFileSync(join(dir, 'electron-builder.yml'), edited);
  await validateConfiguration(await loadConfig(dir, join(dir, 'electron-builder.yml')), quietLogger);
}

describe('electron-builder.yml', () => {
  it('passes electron-builder’s own validation', async () => {
    const config = await loadConfig(root, configPath);
    await expect(validateConfiguration(config, quietLogger)).resolves.toBeUndefined();
  });

  it('names the app, its keyport:// protocol and the built main bundle', async () => {
    const config = await loadConfig(root, configPath);
    expect(config.appId).toBe('dev.keyport.connect');
    expect(config.productName).toBe('Keyport Connect');
    expect(config.protocols).toEqual([{ name: 'Keyport', schemes: ['keyport'] }]);
    expect(config.extraMetadata?.main).toBe('dist/electron/main.mjs');
    // getConfig normalises `files` into one file set.
    expect(config.files).toEqual([{ filter: expect.arrayContaining(['dist/**', 'package.json']) }]);
    // The installers must not land among the bundles they are made of.
    expect(config.directories?.output).not.toMatch(/^dist\b/);
  });

  it('packs the app in an asar, with native modules unpacked and no rebuild of keyport-auth’s', async () => {
    const config = await loadConfig(root, configPath);
    expect(config.asar).toBe(true);
    expect(config.asarUnpack).toEqual(
      expect.arrayContaining([
        '**/*.node',
        'node_modules/@napi-rs/keyring*/**',
        'node_modules/node-hid/**',
        'node_modules/node-pty/**',
      ]),
    );
    expect(config.npmRebuild).toBe(false);
  });

  it('burns the security fuses', async () => {
    const config = await loadConfig(root, configPath);
    expect(config.electronFuses).toEqual({
      runAsNode: false,
      enableCookieEncryption: true,
      enableNodeOptionsEnvironmentVariable: false,
      enableNodeCliInspectArguments: false,
      enableEmbeddedAsarIntegrityValidation: true,
      onlyLoadAppFromAsar: true,
      grantFileProtocolExtraPrivileges: false,
    });
  });

  it('builds a hardened, notarized dmg with minimal entitlements', async () => {
    const config = await loadConfig(root, configPath);
    expect(config.mac).toMatchObject({ target: 'dmg', hardenedRuntime: true, notarize: false });
    for (const path of [config.mac?.entitlements, config.mac?.entitlementsInherit]) {
      expect(path).toBeTypeOf('string');
      const plist = readFileSync(join(root, path as string), 'utf8');
      expect(plist).toContain('<key>com.apple.security.cs.allow-jit</key>');
      for (const weakening of [
        'get-task-allow',
        'disable-library-validation',
        'allow-dyld-environment-variables',
      ]) {
        expect(plist).not.toContain(`<key>com.apple.security.${weakening}</key>`);
        expect(plist).not.toContain(`<key>com.apple.security.cs.${weakening}</key>`);
      }
    }
    expect(config.afterSign).toBe('./build/notarize.mjs');
    expect(existsSync(join(root, 'build', 'notarize.mjs'))).toBe(true);
  });

  it('builds deb and AppImage for Linux and NSIS for Windows', async () => {
    const config = await loadConfig(root, configPath);
    expect(config.linux).toMatchObject({ target: ['deb', 'AppImage'], category: 'Network' });
    expect(config.linux?.desktop?.entry?.Categories).toBe('Network;Security;');
    expect(config.win?.target).toBe('nsis');
  });

  it('gives the Linux packages a desktop entry that handles keyport:// links', async () => {
    const config = await loadConfig(root, configPath);
    // The part of a Packager that computeDesktopEntry reads, as electron-builder fills it from this config.
    const packager = {
      config,
      platformSpecificBuildOptions: config.linux,
      appInfo: { productName: 'Keyport Connect', sanitizedProductName: 'Keyport Connect', description: '' },
      executableName: config.linux?.executableName,
      info: { metadata: { desktopName: 'keyport-connect.desktop' } },
      fileAssociations: [],
    };
    const helper = new LinuxTargetHelper(
      packager as unknown as ConstructorParameters<typeof LinuxTargetHelper>[0],
    );
    const entry = await helper.computeDesktopEntry(config.linux!);
    const lines = entry.split('\n');
    expect(lines).toContain('MimeType=x-scheme-handler/keyport;');
    // The link is one argument (%U), which the app finds in its argv (main/electron/deep-links.ts).
    expect(lines).toContain('Exec="/opt/Keyport Connect/keyport-connect" %U');
  });

  it('rejects a misspelt key, naming it', async () => {
    await expect(validateEdited((text) => text.replace(/^productName:/m, 'productNme:'))).rejects.toThrow(
      /unknown property 'productNme'/,
    );
  });

  it('rejects a value of the wrong type, naming the option', async () => {
    await expect(
      validateEdited((text) => text.replace('hardenedRuntime: true', 'hardenedRuntime: "yes"')),
    ).rejects.toThrow(/mac\.hardenedRuntime should be a boolean/);
  });

  it('rejects a misspelt fuse, naming its section', async () => {
    // electronFuses is an anyOf in the schema, so the message names the section rather than the key.
    await expect(
      validateEdited((text) => text.replace('runAsNode: false', 'runAsNodes: false')),
    ).rejects.toThrow(/configuration\.electronFuses should be/);
  });
});

interface NotarizeHook {
  notarizeCredentials(env: Record<string, string>): Record<string, string> | undefined;
  afterSign(
    context: {
      electronPlatformName: string;
      appOutDir: string;
      packager: { appInfo: { productFilename: string } };
    },
    env: Record<string, string>,
    load: () => Promise<{ notarize: (options: Record<string, string>) => Promise<void> }>,
  ): Promise<{ notarized: boolean }>;
}

const hook = (await import(pathToFileURL(join(root, 'build', 'notarize.mjs')).href)) as NotarizeHook;

describe('build/notarize.mjs (afterSign)', () => {
  const macContext = {
    electronPlatformName: 'darwin',
    appOutDir: '/tmp/out/mac',
    packager: { appInfo: { productFilename: 'Keyport Connect' } },
  };
  const appleId = {
    APPLE_ID: 'dev@keyport.dev',
    APPLE_APP_SPECIFIC_PASSWORD: 'pw',
    APPLE_TEAM_ID: 'TEAM123',
  };

  it('skips Linux and Windows builds without loading @electron/notarize', async () => {
    const load = vi.fn();
    for (const platform of ['linux', 'win32']) {
      await expect(
        hook.afterSign({ ...macContext, electronPlatformName: platform }, appleId, load),
      ).resolves.toEqual({ notarized: false, reason: 'not a macOS build' });
    }
    expect(load).not.toHaveBeenCalled();
  });

  it('skips a macOS build without credentials (or with only some of them)', async () => {
    const load = vi.fn();
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const partial: Record<string, string>[] = [
      {},
      { APPLE_ID: 'dev@keyport.dev' },
      { APPLE_API_KEY: '/k.p8', APPLE_API_KEY_ID: 'K' },
    ];
    for (const env of partial) {
      await expect(hook.afterSign(macContext, env, load)).resolves.toMatchObject({ notarized: false });
    }
    log.mockRestore();
    expect(load).not.toHaveBeenCalled();
  });

  it('notarizes a macOS build with an Apple ID, or preferably an API key', async () => {
    const notarize = vi.fn(async () => {});
    await hook.afterSign(macContext, appleId, async () => ({ notarize }));
    const apiKey = {
      APPLE_API_KEY: '/keys/AuthKey.p8',
      APPLE_API_KEY_ID: 'KEY123',
      APPLE_API_ISSUER: 'issuer',
    };
    await hook.afterSign(macContext, { ...appleId, ...apiKey }, async () => ({ notarize }));
    expect(notarize.mock.calls).toEqual([
      [
        {
          appPath: '/tmp/out/mac/Keyport Connect.app',
          appleId: 'dev@keyport.dev',
          appleIdPassword: 'pw',
          teamId: 'TEAM123',
        },
      ],
      [
        {
          appPath: '/tmp/out/mac/Keyport Connect.app',
          appleApiKey: '/keys/AuthKey.p8',
          appleApiKeyId: 'KEY123',
          appleApiIssuer: 'issuer',
        },
      ],
    ]);
  });
});
