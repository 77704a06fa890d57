import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KeyportError } from '../../proto/errors';
import { RELOGIN_NOTICE } from '../../client/ceremonies/hardware-key';
import { ProfileStore } from '../../client/profiles';
import type { Prompt } from '../../preload/contract';
import { PromptBroker } from './prompt-broker';
import { removeStaleStaging } from '../../client/ceremonies/relogin';
import { causeOf, clockTime, createRelogin, earlyReason, reasonFor, seedNotice } from './relogin';

describe('retryWithRelogin', () => {
  it('runs the action once, hands other errors on as they are, and asks nothing without a profile', async () => {
    const home = await mkdtemp(join(tmpdir(), 'keyport-relogin-'));
    try {
      const shown: Prompt[] = [];
      const broker = new PromptBroker({ prompt: (p) => shown.push(p), closed: () => {} });
      const renewed: unknown[] = [];
      const { retryWithRelogin } = createRelogin({
        profiles: new ProfileStore(home),
        env: {},
        ceremony: () => broker.ceremony(),
        onRenewed: (profile) => renewed.push(profile),
      });
      let runs = 0;
      await expect(retryWithRelogin(undefined, async () => ++runs)).resolves.toBe(1);
      const denied = new KeyportError('ACCESS_DENIED', 'no');
      await expect(retryWithRelogin(undefined, () => Promise.reject(denied))).rejects.toBe(denied);
      // Resolvable, but there is no session to renew: the error as it is, and nothing asked.
      const refused = new KeyportError(
        'PRIVATE_KEY_POLICY_NOT_MET',
        'Unmet private key policy "hardware_key".',
        {
          privateKeyPolicy: 'hardware_key',
          resolvableByRelogin: true,
        },
      );
      await expect(retryWithRelogin('127.0.0.1:3025', () => Promise.reject(refused))).rejects.toBe(refused);
      expect(shown).toEqual([]);
      expect(renewed).toEqual([]);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });
});

describe('reasonFor', () => {
  it("says why: the session's end, the seed's two lines for a raised key policy, else the error's message", () => {
    const profile = { expiresMs: new Date(2026, 0, 5, 14, 2).getTime() } as Parameters<typeof reasonFor>[1];
    expect(clockTime(profile.expiresMs)).toBe('14:02');
    const expired = new KeyportError('CERTIFICATE_EXPIRED', 'Your session has expired.', {
      resolvableByRelogin: true,
    });
    expect(reasonFor(expired, profile)).toEqual(['Your session ended at 14:02.']);
    const policy = new KeyportError('PRIVATE_KEY_POLICY_NOT_MET', 'x', {
      privateKeyPolicy: 'hardware_key_touch',
      resolvableByRelogin: true,
    });
    expect(reasonFor(policy, profile)).toEqual([
      'Unmet private key policy "hardware_key_touch".',
      RELOGIN_NOTICE,
    ]);
    const device = new KeyportError('DEVICE_TRUST_REQUIRED', 'A trusted device is required.', {
      resolvableByRelogin: true,
    });
    expect(reasonFor(device, profile)).toEqual(['A trusted device is required.']);
    // The cause the dialog words it by.
    expect([expired, policy, device].map(causeOf)).toEqual(['expired', 'keyPolicy', 'deviceTrust']);
    const noPolicy = new KeyportError('PRIVATE_KEY_POLICY_NOT_MET', 'x', { resolvableByRelogin: true });
    expect(causeOf(noPolicy)).toBe('other');
  });

  it('says when the session ends, or ended, when the person asks to sign in again', () => {
    const profile = { expiresMs: new Date(2026, 0, 5, 14, 2).getTime() } as Parameters<typeof earlyReason>[0];
    expect(earlyReason(profile, profile.expiresMs - 1)).toEqual({
      reason: ['Your session ends at 14:02.'],
      cause: 'endsSoon',
    });
    expect(earlyReason(profile, profile.expiresMs)).toEqual({
      reason: ['Your session ended at 14:02.'],
      cause: 'expired',
    });
  });
});

describe('seedNotice', () => {
  it("shows the seed's two lines as one notice, and other notices as they are", () => {
    const said: string[] = [];
    const notice = seedNotice({ notice: (message) => said.push(message) });
    notice('Unmet private key policy "hardware_key_pin".');
    expect(said).toEqual([]);
    notice(RELOGIN_NOTICE);
    notice('retrying on another auth server');
    expect(said).toEqual([
      'Unmet private key policy "hardware_key_pin". Relogging in with hardware-backed private key',
      'retrying on another auth server',
    ]);
  });
});

describe('removeStaleStaging', () => {
  it("removes a staging home an app left an hour ago, never a running relogin's or anything else", async () => {
    const home = await mkdtemp(join(tmpdir(), 'keyport-staging-'));
    try {
      for (const name of ['.relogin-old', '.relogin-new', 'profiles']) {
        await mkdir(join(home, name, 'keys'), { recursive: true });
        await writeFile(join(home, name, 'keys', 'k.pem'), 'x');
      }
      const hourAgo = new Date(Date.now() - 61 * 60_000);
      await utimes(join(home, '.relogin-old'), hourAgo, hourAgo);
      await utimes(join(home, 'profiles'), hourAgo, hourAgo);
      await removeStaleStaging(home);
      expect((await readdir(home)).sort()).toEqual(['.relogin-new', 'profiles']);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });
});
