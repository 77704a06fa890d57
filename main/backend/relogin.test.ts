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
import { keyPolicyRelogin, seedNotice } from './relogin';

describe('keyPolicyRelogin', () => {
  it('runs the action once, hands other errors on as they are, and asks nothing without a profile', async () => {
    const home = await mkdtemp(join(tmpdir(), 'keyport-relogin-'));
    try {
      const shown: Prompt[] = [];
      const broker = new PromptBroker({ prompt: (p) => shown.push(p), closed: () => {} });
      const renewed: unknown[] = [];
      const withRelogin = keyPolicyRelogin({
        profiles: new ProfileStore(home),
        env: {},
        onRenewed: (profile) => renewed.push(profile),
      });
      const prompts = broker.ceremony();
      let runs = 0;
      await expect(withRelogin(prompts, async () => ++runs)).resolves.toBe(1);
      const denied = new KeyportError('ACCESS_DENIED', 'no');
      await expect(withRelogin(prompts, () => Promise.reject(denied))).rejects.toBe(denied);
      const refused = new KeyportError(
        'PRIVATE_KEY_POLICY_NOT_MET',
        'Unmet private key policy "hardware_key".',
        {
          privateKeyPolicy: 'hardware_key',
        },
      );
      await expect(withRelogin(prompts, () => Promise.reject(refused))).rejects.toBe(refused);
      expect(shown).toEqual([]);
      expect(renewed).toEqual([]);
      prompts.finish();
    } finally {
      await rm(home, { recursive: true, force: true });
    }
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
