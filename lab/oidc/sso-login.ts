// An SSO login against a lab cluster, driven step by step from a test: the client's gRPC calls made in
// process (its key in memory, a loopback address that nobody listens on), the browser stood in for by
// LabBrowser at the IdP and by the web client at keyport-auth's callback. Each step returns what the next
// needs, so a negative test can replay, tamper or skip one.
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { createServer } from 'node:net';
import type { ClusterApi } from '../../client/api';
import type { LoginResponse, SSOMFAChallenge, StartSSOLoginResponse } from '../../proto/gen/keyport/v1/auth';
import type { MFAAuthenticateResponse, MFARegisterResponse } from '../../proto/gen/keyport/v1/mfa';
import type { DeviceChallengeResponse, DeviceLoginHello } from '../../proto/gen/keyport/v1/device';
import { ssoMfaSignedBytes, ssoRedeemSignedBytes } from '../../proto/sso';
import type { LabCluster } from '../cluster';
import { webClient } from '../web';
import { LabBrowser } from './browser';
import type { LabOidcProvider } from './provider';

export interface SsoClientKey {
  privateKey: KeyObject;
  publicKeyPem: string;
}

export function newSessionKey(): SsoClientKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKey, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

/** A free TCP port on 127.0.0.1 (for a listener whose address must be known before it starts). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface StartedSso {
  key: SsoClientKey;
  started: StartSSOLoginResponse;
  clientRedirect: string;
}

export async function startSso(
  api: ClusterApi,
  connector: string,
  key = newSessionKey(),
  /** This device's TPM, as the client offers it (client/device-trust/login.ts). */
  device?: DeviceLoginHello,
): Promise<StartedSso> {
  const clientRedirect = `http://127.0.0.1:${40000 + (randomBytes(2).readUInt16BE() % 20000)}/${randomBytes(12).toString('base64url')}`;
  const started = await api.auth.startSsoLogin({
    connectorName: connector,
    sshPublicKey: '',
    tlsPublicKey: key.publicKeyPem,
    ttlSeconds: 0,
    clientRedirectUrl: clientRedirect,
    hardwareKeyAttestation: undefined,
    device,
  });
  return { key, started, clientRedirect };
}

/** The person at the IdP: signs in on its login page; returns the URL the IdP sends the browser back to. */
export async function signInAtIdp(
  idp: LabOidcProvider,
  started: StartedSso,
  user: string,
  redirectUri: string,
) {
  const { callbackUrl, page } = await new LabBrowser(idp.caPem).signIn(
    started.started.authorizationUrl,
    { username: user, password: `${user}-lab-password` },
    redirectUri,
  );
  if (callbackUrl === undefined)
    throw new Error(`the IdP did not send the browser back: ${page.status} ${page.text}`);
  return callbackUrl;
}

export interface CallbackResult {
  status: number;
  /** Where keyport-auth sent the browser (the client's loopback address), if it did. */
  location?: URL;
  body: string;
}

/** The browser at keyport-auth's callback. */
export async function followCallback(cluster: LabCluster, callbackUrl: string): Promise<CallbackResult> {
  const url = new URL(callbackUrl);
  const response = await (
    await webClient(cluster)
  ).request('GET', `${url.pathname}${url.search}`, {
    origin: null,
  });
  const location = response.headers.location;
  return {
    status: response.status,
    body: response.body,
    ...(typeof location === 'string' ? { location: new URL(location) } : {}),
  };
}

/** Through the IdP's login as `user` and keyport-auth's callback: the one-time code sent to the client. */
export async function codeAfterIdp(
  lab: { cluster: LabCluster; idp: LabOidcProvider; redirectUri: string },
  started: StartedSso,
  user: string,
): Promise<string> {
  const callback = await followCallback(
    lab.cluster,
    await signInAtIdp(lab.idp, started, user, lab.redirectUri),
  );
  const code = callback.location?.searchParams.get('code');
  if (!code) throw new Error(`no code: ${callback.location?.href ?? callback.body}`);
  return code;
}

export function redeemSso(
  api: ClusterApi,
  started: StartedSso,
  code: string,
  signer: KeyObject = started.key.privateKey,
  /** The TPM's answer to the request's device challenge. */
  deviceResponse?: DeviceChallengeResponse,
  /** With require_local_mfa: the security key's answer, or a first key's registration. */
  localMfa: { mfaResponse?: MFAAuthenticateResponse; newDevice?: MFARegisterResponse } = {},
): Promise<LoginResponse> {
  const signature = sign('sha256', ssoRedeemSignedBytes(started.started.requestId, code), signer);
  return api.auth.redeemSsoLogin({
    requestId: started.started.requestId,
    ssoCode: code,
    keySignature: signature,
    deviceResponse,
    ...localMfa,
  });
}

/** CreateSSOChallenge (require_local_mfa) for the request's code, signed by `signer`. */
export function ssoChallenge(
  api: ClusterApi,
  started: StartedSso,
  code: string,
  signer: KeyObject = started.key.privateKey,
): Promise<SSOMFAChallenge> {
  return api.auth.createSsoChallenge({
    requestId: started.started.requestId,
    ssoCode: code,
    keySignature: sign('sha256', ssoMfaSignedBytes(started.started.requestId, code), signer),
  });
}
