// The one Content-Security-Policy both hosts send with the renderer (Electron security checklist §7).
// Nothing inline, nothing remote: scripts, styles and fonts come from the app's own origin, and the only
// connection the page may open is back to that origin (the browser host's WebSocket; CSP 3 lets 'self'
// match ws: on the same host and port).
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "object-src 'none'",
].join('; ');

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
