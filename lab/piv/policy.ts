// The names and numbers a PIV card and YubiKey-compatible clients share: slots, algorithms and
// YubiKey's PIN and touch policies (developers.yubico.com "PIV: Yubico extensions").

/** Asymmetric key slots (SP 800-73-4 Part 1 Table 4b) and the YubiKey attestation slot f9. */
export const KEY_SLOTS = {
  authentication: 0x9a,
  signature: 0x9c,
  keyManagement: 0x9d,
  cardAuthentication: 0x9e,
  attestation: 0xf9,
} as const;
export const MANAGEMENT_KEY_SLOT = 0x9b;
export const PIN_REFERENCE = 0x80;
export const PUK_REFERENCE = 0x81;

/** 82..95: the retired key management slots. */
export function isRetiredSlot(slot: number): boolean {
  return slot >= 0x82 && slot <= 0x95;
}

/** Slots GENERATE may write: 9a, 9c, 9d, 9e and the retired ones. f9 holds the card's own attestation key. */
export function isGeneratableSlot(slot: number): boolean {
  return slot === 0x9a || slot === 0x9c || slot === 0x9d || slot === 0x9e || isRetiredSlot(slot);
}

export const ALGORITHM = {
  TDES: 0x03,
  AES128: 0x08,
  AES192: 0x0a,
  AES256: 0x0c,
  ECC_P256: 0x11,
} as const;

export const PIN_POLICY = { DEFAULT: 0, NEVER: 1, ONCE: 2, ALWAYS: 3 } as const;
export const TOUCH_POLICY = { DEFAULT: 0, NEVER: 1, ALWAYS: 2, CACHED: 3 } as const;
export type PinPolicy = 1 | 2 | 3;
export type TouchPolicy = 1 | 2 | 3;

/** YubiKey: a cached touch (policy 3) is good for 15 seconds after the touch. */
export const TOUCH_CACHE_MS = 15_000;

/** The slot defaults a YubiKey applies when GENERATE names policy 0 or none (SP 800-73-4 Part 1 §3.1). */
export function defaultPinPolicy(slot: number): PinPolicy {
  if (slot === 0x9c) return PIN_POLICY.ALWAYS;
  if (slot === 0x9e) return PIN_POLICY.NEVER;
  return PIN_POLICY.ONCE;
}

export function slotName(slot: number): string {
  return slot.toString(16).padStart(2, '0');
}
