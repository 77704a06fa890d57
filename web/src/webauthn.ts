// WebAuthn in the browser: the server's request options (JSON form) to what navigator.credentials.get
// takes, and its answer back to AuthenticationResponseJSON, which the server's relying party checks.
const fromBase64url = (text: string): ArrayBuffer => {
  const base64 = text.replace(/-/g, '+').replace(/_/g, '/');
  const binary = atob(base64 + '='.repeat((4 - (base64.length % 4)) % 4));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes.buffer;
};

const toBase64url = (buffer: ArrayBuffer): string => {
  let binary = '';
  for (const byte of new Uint8Array(buffer)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
};

interface RequestOptionsJson {
  challenge: string;
  rpId?: string;
  timeout?: number;
  userVerification?: UserVerificationRequirement;
  allowCredentials?: { id: string; type: 'public-key'; transports?: AuthenticatorTransport[] }[];
}

/** Asks the browser for an assertion; the person taps their key (and gives its PIN for a passkey). */
export async function getAssertion(
  optionsJson: Record<string, unknown>,
  signal?: AbortSignal,
): Promise<Record<string, unknown>> {
  const options = optionsJson as unknown as RequestOptionsJson;
  const publicKey: PublicKeyCredentialRequestOptions = {
    challenge: fromBase64url(options.challenge),
    ...(options.rpId ? { rpId: options.rpId } : {}),
    ...(options.timeout ? { timeout: options.timeout } : {}),
    ...(options.userVerification ? { userVerification: options.userVerification } : {}),
    allowCredentials: (options.allowCredentials ?? []).map((credential) => ({
      id: fromBase64url(credential.id),
      type: credential.type,
      ...(credential.transports ? { transports: credential.transports } : {}),
    })),
  };
  const credential = (await navigator.credentials.get({ publicKey, ...(signal ? { signal } : {}) })) as
    (PublicKeyCredential & { response: AuthenticatorAssertionResponse }) | null;
  if (!credential) throw new Error('The security key gave no answer.');
  const response = credential.response;
  return {
    id: credential.id,
    rawId: toBase64url(credential.rawId),
    type: credential.type,
    clientExtensionResults: credential.getClientExtensionResults(),
    ...(credential.authenticatorAttachment
      ? { authenticatorAttachment: credential.authenticatorAttachment }
      : {}),
    response: {
      clientDataJSON: toBase64url(response.clientDataJSON),
      authenticatorData: toBase64url(response.authenticatorData),
      signature: toBase64url(response.signature),
      ...(response.userHandle ? { userHandle: toBase64url(response.userHandle) } : {}),
    },
  };
}
