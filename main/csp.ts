// The renderer's security headers, sent by both hosts; its Content-Security-Policy is the one every Keyport
// page has (proto/csp.ts).
import { CONTENT_SECURITY_POLICY } from '../proto/csp';

export { CONTENT_SECURITY_POLICY };

/** Headers sent with every renderer response, by either host. */
export const RENDERER_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': CONTENT_SECURITY_POLICY,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  // Only features Chromium knows: an unknown one ("bluetooth") is logged as a warning on every load. Web
  // Bluetooth stays off anyway: the Electron host denies every permission request.
  'Permissions-Policy': 'camera=(), microphone=(), geolocation=(), usb=(), hid=(), serial=()',
};
