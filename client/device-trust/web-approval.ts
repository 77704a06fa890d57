// Keyport Connect's side of the web-session approval ceremony (auth/web-approval.ts is the server's): a
// keyport:// link's request is read for the screen, then approved by this device.
//   1. GetWebSessionApproval{id, token} → what the screen shows (cluster, user, browser, user agent, code);
//   2. BeginWebSessionApproval{id, token, credential_id} → a nonce for this device's enrolled credential;
//   3. the TPM quotes SHA-256(label ‖ nonce ‖ SHA-256(web token)): the answer is bound to this web token;
//   4. ApproveWebSession{…, quote} → the single-use confirm URL, to which the link's redirect is added and
//      which the caller opens in the person's browser.
import { KeyportError } from '../../proto/errors';
import type { WebSessionApproval } from '../../proto/gen/keyport/v1/web_session';
import { WEB_DEVICE_CONFIRM_PATH, webApprovalQuoteData, webTokenDigest } from '../../proto/web-approval';
import type { CardSessions } from '../hardware/piv/card-sessions';
import type { PivPrompts } from '../hardware/piv/signer';
import { perfSteps } from '../perf';
import type { Profile, ProfileStore } from '../profiles';
import { connectAsProfile } from '../session';
import { tpmConfigured, TrustedDevice } from './device';
import type { DeviceTrustOptions } from './device';

export interface WebApprovalRequest {
  id: string;
  token: string;
  /** A path on the web UI (the link's, checked by its parser). */
  redirect: string;
}

export interface WebApprovalOptions extends DeviceTrustOptions {
  piv?: PivPrompts;
  cards?: CardSessions;
  onProgress?: (step: 'reading-tpm' | 'done') => void;
  /** Told each gRPC call's name (the approval bench counts round trips with it). */
  onCall?: (method: string) => void;
}

const pivOption = ({ piv, cards }: WebApprovalOptions) => ({
  ...(piv ? { piv } : {}),
  ...(cards ? { cards } : {}),
});

/** Step 1: what the authorize screen shows. */
export async function readWebApproval(
  profiles: ProfileStore,
  profile: Profile,
  request: WebApprovalRequest,
  options: WebApprovalOptions = {},
): Promise<WebSessionApproval> {
  const perf = perfSteps('client.readWebApproval');
  const api = await connectAsProfile(profiles, profile, options.onCall, pivOption(options));
  perf.step('profile, key, channel');
  try {
    return await api.webSessions.getWebSessionApproval({ id: request.id, token: request.token });
  } finally {
    perf.step('call GetWebSessionApproval (TLS handshake)');
    api.close();
    perf.end();
  }
}

/**
 * The confirm URL the server answered, with the link's redirect: https, no user info, exactly the confirm
 * path, only `id` and `token`. Anything else is not opened.
 */
export function confirmUrlWithRedirect(raw: string, redirect: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    url = new URL('invalid:');
  }
  const keys = [...url.searchParams.keys()].sort().join(',');
  if (
    url.protocol !== 'https:' ||
    url.username ||
    url.password ||
    url.hash ||
    url.pathname !== WEB_DEVICE_CONFIRM_PATH ||
    keys !== 'id,token'
  ) {
    throw new KeyportError('INTERNAL', 'The cluster answered with a confirm URL that Keyport does not open.');
  }
  url.searchParams.set('redirect', redirect);
  return url.href;
}

/** Steps 2–4: this device approves; returns the confirm URL to open and the approving device. */
export async function approveWebSession(
  profiles: ProfileStore,
  profile: Profile,
  request: WebApprovalRequest,
  options: WebApprovalOptions = {},
): Promise<{ confirmUrl: string; deviceId: string; assetTag: string }> {
  const env = options.env ?? process.env;
  if (!tpmConfigured(env)) {
    throw new KeyportError(
      'DEVICE_TRUST_REQUIRED',
      'Only a trusted device can verify a browser, and this machine has no TPM that Keyport can use.',
    );
  }
  const perf = perfSteps('client.approveWebSession');
  const api = await connectAsProfile(profiles, profile, options.onCall, pivOption(options));
  perf.step('profile, key, channel');
  let device: TrustedDevice | undefined;
  try {
    options.onProgress?.('reading-tpm');
    device = await TrustedDevice.open(options);
    const credentialId = await device.credentialId();
    perf.step('open TPM, credential');
    if (!credentialId) {
      throw new KeyportError(
        'DEVICE_TRUST_REQUIRED',
        'This device is not enrolled: enroll it (Device trust, or `keyport device enroll`) and try again.',
      );
    }
    const begun = await api.webSessions.beginWebSessionApproval({
      id: request.id,
      token: request.token,
      credentialId,
    });
    perf.step('call BeginWebSessionApproval (TLS handshake)');
    const response = await device.answer({
      nonce: webApprovalQuoteData(begun.nonce, webTokenDigest(request.token)),
      credentialBlob: Buffer.alloc(0),
      encryptedSecret: Buffer.alloc(0),
    });
    perf.step('TPM quote');
    const confirmed = await api.webSessions.approveWebSession({
      id: request.id,
      token: request.token,
      challengeId: begun.challengeId,
      response,
    });
    perf.step('call ApproveWebSession');
    return {
      confirmUrl: confirmUrlWithRedirect(confirmed.confirmUrl, request.redirect),
      deviceId: confirmed.deviceId,
      assetTag: confirmed.assetTag,
    };
  } finally {
    options.onProgress?.('done');
    await device?.close().catch(() => {});
    api.close();
    perf.step('close');
    perf.end();
  }
}
