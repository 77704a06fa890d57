import { describe, expect, it } from 'vitest';
import { KeyportError } from '../../proto/errors';
import type { MFAAuthenticateChallenge } from '../../proto/gen/keyport/v1/mfa';
import {
  cardKeyId,
  hardwareKeyRecord,
  meetsPolicy,
  prepareCardSessionKey,
  refusedKeyPolicy,
  reloginNotices,
  stepOneKeyPolicy,
} from './hardware-key';
import type { CardSessionKey } from './hardware-key';

const challenge = (fields: Partial<MFAAuthenticateChallenge>) => fields as MFAAuthenticateChallenge;

describe('hardware-key login decisions', () => {
  it("reads step one's policy and slot; an older cluster says nothing; an unknown policy asks for an update", () => {
    expect(stepOneKeyPolicy(challenge({}))).toBeUndefined();
    expect(stepOneKeyPolicy(challenge({ privateKeyPolicy: 'none' }))).toEqual({ policy: 'none' });
    expect(stepOneKeyPolicy(challenge({ privateKeyPolicy: 'hardware_key_touch', pivSlot: '9c' }))).toEqual({
      policy: 'hardware_key_touch',
      slot: '9c',
    });
    expect(() => stepOneKeyPolicy(challenge({ privateKeyPolicy: 'hardware_key_retina' }))).toThrow(
      /Unmet private key policy "hardware_key_retina"\. .*update it/,
    );
  });

  it('reads the policy a PRIVATE_KEY_POLICY_NOT_MET refusal names, and nothing from any other error', () => {
    const refusal = new KeyportError('PRIVATE_KEY_POLICY_NOT_MET', 'no', {
      privateKeyPolicy: 'hardware_key_pin',
    });
    expect(refusedKeyPolicy(refusal)).toBe('hardware_key_pin');
    expect(refusedKeyPolicy(new KeyportError('ACCESS_DENIED', 'no'))).toBeUndefined();
    expect(refusedKeyPolicy(new Error('no'))).toBeUndefined();
  });

  it("says the seed's two lines", () => {
    expect(reloginNotices('hardware_key_touch')).toEqual([
      'Unmet private key policy "hardware_key_touch".',
      'Relogging in with hardware-backed private key.',
    ]);
  });

  it('keeps a card key when it meets the policy, and records slot, card and policies for the profile', () => {
    const key = {
      policy: 'hardware_key_touch_and_pin',
      prepared: {
        slot: 0x9d,
        serial: 12345678,
        meets: 'hardware_key_touch_and_pin',
        keyPolicy: { pin: 'once', touch: 'cached' },
      },
    } as unknown as CardSessionKey;
    expect(meetsPolicy(undefined, 'none')).toBe(true);
    expect(meetsPolicy(undefined, 'hardware_key')).toBe(false);
    expect(meetsPolicy(key, 'hardware_key_touch')).toBe(true);
    const touchOnly = {
      ...key,
      prepared: { ...key.prepared, meets: 'hardware_key_touch' },
    } as CardSessionKey;
    expect(meetsPolicy(touchOnly, 'hardware_key_pin')).toBe(false);
    const record = hardwareKeyRecord(key);
    expect(record).toEqual({
      slot: '9d',
      serial: 12345678,
      policy: 'hardware_key_touch_and_pin',
      pinPolicy: 'once',
      touchPolicy: 'cached',
    });
    expect(cardKeyId(record)).toBe('piv/12345678/9d');
  });

  it('refuses, naming the policy, where the client has no way to reach a card', async () => {
    await expect(prepareCardSessionKey(undefined, 'hardware_key_touch', undefined)).rejects.toMatchObject({
      code: 'PRIVATE_KEY_POLICY_NOT_MET',
      fields: { privateKeyPolicy: 'hardware_key_touch' },
    });
  });
});
