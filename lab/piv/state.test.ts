import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { freshState } from './card.test-support';
import { CardStateError, loadOrCreateCardState, readCardState, writeCardState } from './state';
import { TouchController } from './touch';
import type { TouchEvent } from './touch';

describe('virtual PIV card state file', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'keyport-piv-state-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('is written 0600 and read back the same', async () => {
    const path = join(dir, 'card.json');
    const state = await freshState();
    writeCardState(path, state);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readCardState(path)).toEqual(state);
  });

  it('is made on first use, with the factory PIN, PUK, AES-192 management key and an attestation root', async () => {
    const path = join(dir, 'card.json');
    const created = await loadOrCreateCardState(path, { serial: 42 });
    expect(created).toMatchObject({
      serial: 42,
      firmware: [5, 7, 1],
      pin: { paddedHex: '313233343536ffff', retries: 3 },
      puk: { paddedHex: '3132333435363738', retries: 3 },
      managementKey: { algorithm: 0x0a, keyHex: '010203040506070801020304050607080102030405060708' },
    });
    expect(created.attestation.root.certPem).toMatch(/BEGIN CERTIFICATE/);
    expect(await loadOrCreateCardState(path, { serial: 7 })).toEqual(created);
  });

  it('refuses a file that is not a card state', () => {
    const path = join(dir, 'card.json');
    writeFileSync(path, '{"version":1}');
    expect(() => readCardState(path)).toThrow(CardStateError);
    writeFileSync(path, 'not json');
    expect(() => readCardState(path)).toThrow(/not JSON/);
    expect(readCardState(join(dir, 'missing.json'))).toBeUndefined();
  });
});

describe('touch modes', () => {
  it('auto touches at once, denied never, and both announce the request', async () => {
    const events: TouchEvent[] = [];
    const touch = new TouchController('auto', (e) => events.push(e));
    expect(await touch.request()).toBe('approved');
    touch.mode = 'denied';
    expect(await touch.request()).toBe('denied');
    expect(events.map((e) => e.event)).toEqual(['touch-needed', 'touch', 'touch-needed', 'touch']);
  });

  it('manual waits for an answer, gives up after its timeout, and ends on cancel', async () => {
    const touch = new TouchController('manual', () => {}, 50);
    expect(touch.answer('approve')).toBe(false);
    const approved = touch.request();
    expect(touch.isWaiting).toBe(true);
    expect(touch.answer('approve')).toBe(true);
    expect(await approved).toBe('approved');
    expect(await touch.request()).toBe('timeout');
    const cancelled = touch.request();
    touch.cancel();
    expect(await cancelled).toBe('cancelled');
  });
});
