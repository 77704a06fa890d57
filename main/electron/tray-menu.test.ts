import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { appPaths } from './paths';
import { escapeMnemonics, reloginReason, trayMenu } from './tray-menu';
import type { TrayItem, TrayMenuInput } from './tray-menu';

const root = fileURLToPath(new URL('../..', import.meta.url));
/** A time today in the machine's time zone, as the menu shows it (HH:MM). */
const at = (hours: number, minutes: number) => new Date(2026, 11, 7, hours, minutes).getTime();
const now = at(9, 0);

const lab = { address: 'lab.example:3025', name: 'lab' };
const prod = { address: 'prod.example:3025', name: 'prod', lastUser: 'bob' };
const profile = (address: string, user: string, expiresMs: number, cluster = 'lab') => ({
  address,
  cluster,
  user,
  expiresMs,
});
const menu = (input: Partial<TrayMenuInput>) =>
  trayMenu({ clusters: [], profiles: new Map(), now, ...input });

const tail: TrayItem[] = [
  { kind: 'separator' },
  { kind: 'action', label: 'Open Keyport Connect', action: { kind: 'open' } },
  { kind: 'action', label: 'Quit', action: { kind: 'quit' } },
];

describe('trayMenu', () => {
  it('one cluster signed in: its user and "until HH:MM", Sign in again…, Open Keyport Connect, Quit', () => {
    const items = menu({
      clusters: [lab],
      profiles: new Map([[lab.address, profile(lab.address, 'alice', at(14, 32))]]),
    });
    expect(items).toEqual([
      { kind: 'status', label: 'lab: alice, until 14:32' },
      {
        kind: 'action',
        label: 'Sign in again…',
        action: { kind: 'signInAgain', address: lab.address, reason: ['Your session ends at 14:32.'] },
      },
      ...tail,
    ]);
  });

  it('a session past its expiry is "signed out", and signing in again says when it ended', () => {
    const expired = profile(lab.address, 'alice', at(8, 5));
    for (const time of [at(8, 5), at(8, 6)]) {
      expect(menu({ clusters: [lab], profiles: new Map([[lab.address, expired]]), now: time })).toEqual([
        { kind: 'status', label: 'lab: alice, signed out' },
        {
          kind: 'action',
          label: 'Sign in again…',
          action: { kind: 'signInAgain', address: lab.address, reason: ['Your session ended at 08:05.'] },
        },
        ...tail,
      ]);
    }
  });

  it('a cluster without a profile is "signed out" (with the last user, when known) and opens the login form', () => {
    expect(menu({ clusters: [prod] })).toEqual([
      { kind: 'status', label: 'prod: bob, signed out' },
      { kind: 'action', label: 'Sign in…', action: { kind: 'open' } },
      ...tail,
    ]);
    expect(menu({ clusters: [lab] })[0]).toEqual({ kind: 'status', label: 'lab: signed out' });
  });

  it('several clusters, by name, each with its own item naming it', () => {
    const items = menu({
      clusters: [prod, lab],
      profiles: new Map([[lab.address, profile(lab.address, 'alice', at(17, 0))]]),
    });
    expect(items).toEqual([
      { kind: 'status', label: 'lab: alice, until 17:00' },
      {
        kind: 'action',
        label: 'Sign in again to lab…',
        action: { kind: 'signInAgain', address: lab.address, reason: ['Your session ends at 17:00.'] },
      },
      { kind: 'status', label: 'prod: bob, signed out' },
      { kind: 'action', label: 'Sign in to prod…', action: { kind: 'open' } },
      ...tail,
    ]);
  });

  it('a profile whose cluster record is gone is still listed, by its cluster name', () => {
    const items = menu({
      profiles: new Map([['old.example:3025', profile('old.example:3025', 'carol', at(10, 0), 'old')]]),
    });
    expect(items.slice(0, 2)).toEqual([
      { kind: 'status', label: 'old: carol, until 10:00' },
      {
        kind: 'action',
        label: 'Sign in again…',
        action: {
          kind: 'signInAgain',
          address: 'old.example:3025',
          reason: ['Your session ends at 10:00.'],
        },
      },
    ]);
  });

  it('no cluster yet: says so, and still opens the app and quits', () => {
    expect(menu({})).toEqual([{ kind: 'status', label: 'No clusters yet' }, ...tail]);
  });

  it('keeps an & in a name or user as it is (Electron would read it as an access key)', () => {
    const items = menu({
      clusters: [{ address: 'rd.example:3025', name: 'R&D' }],
      profiles: new Map([['rd.example:3025', profile('rd.example:3025', 'a&b', at(12, 0))]]),
    });
    expect(items[0]).toEqual({ kind: 'status', label: 'R&&D: a&&b, until 12:00' });
    expect(escapeMnemonics('&&')).toBe('&&&&');
  });

  it('the relogin reason: "ends at" before the expiry, "ended at" from it on', () => {
    expect(reloginReason(at(14, 2), at(14, 1))).toEqual(['Your session ends at 14:02.']);
    expect(reloginReason(at(14, 2), at(14, 2))).toEqual(['Your session ended at 14:02.']);
  });
});

describe('the tray icon image', () => {
  const assets = fileURLToPath(new URL('./assets/', import.meta.url));
  /** Width and height from a PNG's IHDR, after its signature. */
  const pngSize = (bytes: Buffer) => {
    expect(bytes.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    expect(bytes.subarray(12, 16).toString('latin1')).toBe('IHDR');
    return [bytes.readUInt32BE(16), bytes.readUInt32BE(20)];
  };

  it('is a 16 px PNG with its 32 px @2x beside it (Electron picks that one on a high-density screen)', () => {
    expect(pngSize(readFileSync(join(assets, 'tray.png')))).toEqual([16, 16]);
    expect(pngSize(readFileSync(join(assets, 'tray@2x.png')))).toEqual([32, 32]);
  });

  it('build-app.mjs puts both where paths.ts looks in dist/', () => {
    const icon = appPaths(pathToFileURL(join(root, 'dist', 'electron', 'main.mjs')).href).trayIcon;
    expect(readFileSync(icon)).toEqual(readFileSync(join(assets, 'tray.png')));
    expect(readFileSync(icon.replace(/\.png$/, '@2x.png'))).toEqual(
      readFileSync(join(assets, 'tray@2x.png')),
    );
  });
});
