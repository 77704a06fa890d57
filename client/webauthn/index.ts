// The platform side of WebAuthn: client data, ceremonies over every plugged-in security key, JSON forms.
export { clientDataJSON, originFor, originHost } from './client-data';
export type { ClientDataInput, ClientDataType } from './client-data';
export { authenticate, raceKeys, register, SECURITY_KEY_MESSAGES } from './ceremony';
export type { CeremonyOptions, SecurityKeyPrompts } from './ceremony';
export { closeKeys, openHidSecurityKeys, openKeys, openLabKey } from './keys';
export type { OpenKeysOptions, SecurityKey } from './keys';
export type * from './types';
