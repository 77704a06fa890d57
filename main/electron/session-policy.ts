// What the app's session allows: no permission, no device, and no request that leaves app:// (Electron
// security checklist §5, §7). The renderer needs nothing else: security keys, smart cards and the TPM are
// reached from main, and the cluster is reached by the client core over Node's own network stack.
import type { Certificate, Event, Session, WebContents } from 'electron';
import { isAppUrl } from './app-protocol';

export interface SessionPolicyOptions {
  /** Development builds: the DevTools front end may load. */
  devTools: boolean;
}

export function denyPermissionRequest(
  _contents: WebContents,
  _permission: string,
  callback: (granted: boolean) => void,
): void {
  callback(false);
}

export function denyPermissionCheck(): boolean {
  return false;
}

export function denyDevicePermission(): boolean {
  return false;
}

/**
 * Requests the session lets through: the app's own origin, data: URLs (which the CSP allows for images and
 * which never reach a network), and the DevTools front end in development builds.
 */
export function isAllowedRequestUrl(raw: string, { devTools }: SessionPolicyOptions): boolean {
  if (isAppUrl(raw)) return true;
  if (raw.startsWith('data:')) return true;
  return devTools && raw.startsWith('devtools://');
}

/** app 'certificate-error': never trust a certificate Chromium rejected (the default, made explicit). */
export function denyCertificateError(
  _event: Event,
  _contents: WebContents,
  _url: string,
  _error: string,
  _certificate: Certificate,
  callback: (isTrusted: boolean) => void,
): void {
  callback(false);
}

export function applySessionPolicy(session: Session, options: SessionPolicyOptions): void {
  session.setPermissionRequestHandler(denyPermissionRequest);
  session.setPermissionCheckHandler(denyPermissionCheck);
  session.setDevicePermissionHandler(denyDevicePermission);
  session.webRequest.onBeforeRequest((details, callback) => {
    callback({ cancel: !isAllowedRequestUrl(details.url, options) });
  });
}
