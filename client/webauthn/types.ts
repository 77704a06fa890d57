// WebAuthn Level 3 JSON forms (§5.1.8-§5.1.11, PublicKeyCredential.toJSON / parse*OptionsFromJSON):
// what the auth API carries as strings. Structurally the same as @simplewebauthn's types, written here
// so the client core does not depend on a server library.
export type Base64URLString = string;

export type UserVerificationRequirement = 'required' | 'preferred' | 'discouraged';
export type ResidentKeyRequirement = 'required' | 'preferred' | 'discouraged';
export type AuthenticatorTransport = 'usb' | 'nfc' | 'ble' | 'hybrid' | 'internal' | 'smart-card' | 'cable';

export interface PublicKeyCredentialDescriptorJSON {
  id: Base64URLString;
  /** 'public-key'; descriptors of other types are ignored (§5.10.3). */
  type: string;
  transports?: string[];
}

export interface PublicKeyCredentialCreationOptionsJSON {
  rp: { id?: string; name: string };
  user: { id: Base64URLString; name: string; displayName: string };
  challenge: Base64URLString;
  pubKeyCredParams: { type: string; alg: number }[];
  timeout?: number;
  excludeCredentials?: PublicKeyCredentialDescriptorJSON[];
  authenticatorSelection?: {
    authenticatorAttachment?: 'platform' | 'cross-platform';
    residentKey?: ResidentKeyRequirement;
    requireResidentKey?: boolean;
    userVerification?: UserVerificationRequirement;
  };
  hints?: string[];
  attestation?: 'none' | 'indirect' | 'direct' | 'enterprise';
  attestationFormats?: string[];
  extensions?: { credProps?: boolean };
}

export interface PublicKeyCredentialRequestOptionsJSON {
  challenge: Base64URLString;
  timeout?: number;
  rpId?: string;
  allowCredentials?: PublicKeyCredentialDescriptorJSON[];
  userVerification?: UserVerificationRequirement;
  hints?: string[];
  extensions?: { credProps?: boolean };
}

export interface ClientExtensionResults {
  credProps?: { rk: boolean };
}

export interface RegistrationResponseJSON {
  id: Base64URLString;
  rawId: Base64URLString;
  type: 'public-key';
  response: {
    clientDataJSON: Base64URLString;
    attestationObject: Base64URLString;
    authenticatorData?: Base64URLString;
    transports?: AuthenticatorTransport[];
    publicKeyAlgorithm?: number;
    publicKey?: Base64URLString;
  };
  authenticatorAttachment?: 'platform' | 'cross-platform';
  clientExtensionResults: ClientExtensionResults;
}

export interface AuthenticationResponseJSON {
  id: Base64URLString;
  rawId: Base64URLString;
  type: 'public-key';
  response: {
    clientDataJSON: Base64URLString;
    authenticatorData: Base64URLString;
    signature: Base64URLString;
    userHandle?: Base64URLString;
  };
  authenticatorAttachment?: 'platform' | 'cross-platform';
  clientExtensionResults: ClientExtensionResults;
}
