// SSO login through an oidc connector, as tsh does it (`keyport login --auth=NAME`):
//   1. the session key, made and written in the keystore; a listener on 127.0.0.1, a random port and a
//      random path (RFC 8252 §7.3), for the browser's way back; this machine's TPM, when the cluster uses
//      device trust (its enrolled credential, or its EK and AK to auto-enroll);
//   2. StartSSOLogin{connector, public keys, that loopback address, the device} → the IdP's authorization
//      URL, and a device challenge;
//   3. the URL opened in the system browser (or printed, with --browser=none);
//   4. the browser comes back to the loopback address with a one-time code (keyport-auth's callback sent
//      it there after the IdP's login), or with the error keyport-auth refused the login for;
//   5. with a connector's require_local_mfa, the person's security key (sso-local-mfa.ts: one more call);
//      RedeemSSOLogin{request, code, the session key's signature over both, the TPM's quote of the device
//      challenge, the key's answer} → the certificates (with the device, when it answered), and the tab says "Signed in to
//      CLUSTER. You can close this tab.";
//   6. the profile, as every login saves it, naming the connector (a relogin goes through it again).
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { errorCodes, KeyportError } from '../../proto/errors';
import type { KeyportErrorCode } from '../../proto/errors';
import type { LoginResponse } from '../../proto/gen/keyport/v1/auth';
import { SSO_TOKEN, ssoRedeemSignedBytes } from '../../proto/sso';
import type { ClusterApi } from '../api';
import type { ClusterAddress } from '../cluster-trust';
import { formatClusterAddress } from '../cluster-trust';
import type { KeyStoreKind } from '../keystore';
import { perfSteps } from '../perf';
import type { Profile, ProfileStore } from '../profiles';
import type { DeviceTrustOptions } from '../device-trust/device';
import { answerDeviceChallenge, startDeviceLogin } from '../device-trust/login';
import type { DeviceLoginStart } from '../device-trust/login';
import { connectReplica } from '../replicas';
import { ensureTrustedCluster, webauthnOrigin } from '../session';
import type { SecurityKeyPrompts } from '../webauthn';
import { answerLocalMfa } from './sso-local-mfa';
import type { TrustPrompt } from '../session';
import { LoginCardKey } from './login-card-key';
import { saveSession } from './login-profile';
import { loginSessionKey } from './login-session-key';

export interface SsoLoginPrompts extends TrustPrompt {
  /** Opens the IdP's authorization URL in the person's browser (or tells them to). */
  openBrowser(url: string): Promise<void> | void;
  notice?(message: string): void;
  /** A connector with require_local_mfa: the person's security key (touch, PIN) after the IdP's login. */
  securityKey?: SecurityKeyPrompts;
}

export interface SsoLoginOptions {
  profiles: ProfileStore;
  address: ClusterAddress;
  replicas?: ClusterAddress[];
  caPin?: string;
  ttlSeconds?: number;
  keystore: KeyStoreKind;
  /** The oidc connector's name. */
  connector: string;
  prompts: SsoLoginPrompts;
  signal?: AbortSignal;
  onCall?: (method: string) => void;
  /** This machine's TPM for device trust (default: KEYPORT_TPM_TCTI or /dev/tpmrm0); false: never. */
  device?: DeviceTrustOptions | false;
}

/** Where no one can be asked (a key without a PIN, touched): the prompts say nothing. */
const silentKeyPrompts: SecurityKeyPrompts = {
  tap: () => {},
  pin: () => Promise.reject(new Error('No one to ask for the security key PIN.')),
  newPin: () => Promise.reject(new Error('No one to ask for a new security key PIN.')),
  notice: () => {},
};

/** How long the client waits for the browser after opening it: the request's own 5 minutes. */
const WAIT_FOR_BROWSER_MS = 5 * 60 * 1000;

export async function loginWithSso(options: SsoLoginOptions): Promise<Profile> {
  const perf = perfSteps('client.sso-login');
  const { profiles, prompts } = options;
  const address = formatClusterAddress(options.address);
  const key = loginSessionKey(options.keystore, profiles.home, `${address}/sso-${options.connector}`);
  await key.ready;
  let api: ClusterApi | undefined;
  let loopback: LoopbackListener | undefined;
  let device: DeviceLoginStart = {};
  key.hold();
  try {
    const trusted = await ensureTrustedCluster(profiles, options.address, {
      caPin: options.caPin,
      prompt: prompts,
      onCall: options.onCall,
      ...(options.replicas ? { replicas: options.replicas } : {}),
    });
    const stored = Promise.all([profiles.getProfile(address), profiles.getTrustedCluster(options.address)]);
    stored.catch(() => {});
    // 1. The session key and the loopback listener.
    const signer = await key.store();
    loopback = await listenOnLoopback(trusted.name);
    perf.step('session key, loopback listener');
    // 2. The request, with this machine's TPM when the cluster uses device trust (as a login's step 1).
    const channel = await connectReplica(trusted, { onCall: options.onCall });
    api = channel;
    device = await startDeviceLogin(trusted, options.device, async () => {
      const info = await channel.auth.getClusterInfo({});
      return { mode: info.deviceTrustMode || 'off', autoEnroll: info.deviceAutoEnroll };
    });
    perf.step('device hello');
    const started = await api.auth.startSsoLogin({
      connectorName: options.connector,
      sshPublicKey: signer.sshPublicKey,
      tlsPublicKey: signer.publicKeyPem,
      ttlSeconds: options.ttlSeconds ?? 0,
      clientRedirectUrl: loopback.url,
      hardwareKeyAttestation: undefined,
      device: device.hello,
    });
    perf.step('StartSSOLogin');
    // 3–4. The browser, and its way back.
    await prompts.openBrowser(started.authorizationUrl);
    const code = await loopback.code(options.signal);
    perf.step('browser');
    // 5. The code redeemed with the key's signature and the device's quote.
    let issued: LoginResponse;
    try {
      const keySignature = await signer.sign(ssoRedeemSignedBytes(started.requestId, code));
      // With require_local_mfa, Keyport's own security-key check first (one more call).
      const localMfa = started.localMfaRequired
        ? await answerLocalMfa(api, {
            requestId: started.requestId,
            code,
            signer,
            origin: webauthnOrigin(trusted),
            connector: options.connector,
            prompts: { securityKey: prompts.securityKey ?? silentKeyPrompts, notice: prompts.notice },
            signal: options.signal,
          })
        : {};
      perf.step('security key');
      const deviceResponse = await answerDeviceChallenge(device, started.deviceChallenge);
      perf.step('device quote');
      issued = await api.auth.redeemSsoLogin({
        requestId: started.requestId,
        ssoCode: code,
        keySignature,
        deviceResponse,
        ...localMfa,
      });
    } catch (error) {
      loopback.finish(error);
      throw error;
    }
    loopback.finish();
    perf.step('RedeemSSOLogin');
    // 6. The profile.
    const profile = await saveSession({
      profiles,
      stored,
      address,
      keystore: options.keystore,
      issued,
      answeredBy: api.address,
      deviceOffered: !!device.hello,
      key,
      card: new LoginCardKey({ perf, trusted, rememberLastPolicy: false }),
      ssoConnector: options.connector,
    });
    perf.step('profile');
    return profile;
  } catch (error) {
    key.release();
    await key.takeBack();
    throw error;
  } finally {
    key.release();
    api?.close();
    await loopback?.close();
    await device.device?.close().catch(() => {});
    perf.end();
  }
}

interface LoopbackListener {
  /** http://127.0.0.1:PORT/PATH */
  url: string;
  /** The one-time code the browser brings back; rejects with the error keyport-auth sent instead. */
  code(signal?: AbortSignal): Promise<string>;
  /** Answers the browser's tab: signed in, or why not. */
  finish(error?: unknown): void;
  close(): Promise<void>;
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(response: ServerResponse, status: number, title: string, text: string): void {
  response.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Cache-Control': 'no-store',
    'Content-Security-Policy':
      "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    'Referrer-Policy': 'no-referrer',
    'X-Content-Type-Options': 'nosniff',
  });
  response.end(
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>` +
      `<body><main><h1>${escapeHtml(title)}</h1><p>${escapeHtml(text)}</p></main></body></html>`,
  );
}

/** The listener on 127.0.0.1 (a random port, a random path) that the browser returns to, once. */
async function listenOnLoopback(clusterName: string): Promise<LoopbackListener> {
  const path = `/${randomBytes(16).toString('base64url')}`;
  let tab: ServerResponse | undefined;
  let settle: { resolve(code: string): void; reject(error: unknown): void } | undefined;
  let outcome: { code: string } | { error: KeyportError } | undefined;
  const server: Server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    if (request.method !== 'GET' || url.pathname !== path || outcome !== undefined) {
      page(response, 404, 'Not found', 'Nothing is served here.');
      return;
    }
    const code = url.searchParams.get('code');
    const errorCode = url.searchParams.get('error');
    if (code !== null && SSO_TOKEN.test(code)) {
      outcome = { code };
      tab = response;
      settle?.resolve(code);
      return;
    }
    const message = (url.searchParams.get('message') ?? 'The sign-in was refused.').slice(0, 512);
    const error = new KeyportError(
      errorCode !== null && (errorCodes as readonly string[]).includes(errorCode)
        ? (errorCode as KeyportErrorCode)
        : 'ACCESS_DENIED',
      message,
    );
    outcome = { error };
    page(response, 200, `Sign-in to ${clusterName} failed`, `${message} You can close this tab.`);
    settle?.reject(error);
  });
  server.headersTimeout = 20_000;
  server.requestTimeout = 30_000;
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const bound = server.address();
      resolve(typeof bound === 'object' && bound ? bound.port : 0);
    });
  });
  return {
    url: `http://127.0.0.1:${port}${path}`,
    code(signal) {
      return new Promise<string>((resolve, reject) => {
        if (outcome !== undefined) {
          if ('code' in outcome) resolve(outcome.code);
          else reject(outcome.error);
          return;
        }
        const timer = setTimeout(
          () =>
            reject(
              new KeyportError('EXPIRED', 'The browser did not come back within 5 minutes; sign in again.'),
            ),
          WAIT_FOR_BROWSER_MS,
        );
        timer.unref();
        const abort = () => reject(new KeyportError('CANCELLED', 'Login cancelled: nothing was saved.'));
        // Cancelled while the browser was being opened: no wait at all.
        if (signal?.aborted) {
          clearTimeout(timer);
          abort();
          return;
        }
        signal?.addEventListener('abort', abort, { once: true });
        settle = {
          resolve: (code) => {
            clearTimeout(timer);
            signal?.removeEventListener('abort', abort);
            resolve(code);
          },
          reject: (error) => {
            clearTimeout(timer);
            signal?.removeEventListener('abort', abort);
            reject(error);
          },
        };
      });
    },
    finish(error) {
      if (!tab) return;
      if (error === undefined) {
        page(tab, 200, `Signed in to ${clusterName}`, `Signed in to ${clusterName}. You can close this tab.`);
      } else {
        const message = error instanceof Error ? error.message : String(error);
        page(tab, 200, `Sign-in to ${clusterName} failed`, `${message} You can close this tab.`);
      }
      tab = undefined;
    },
    close: () =>
      new Promise<void>((resolve) => {
        tab?.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
