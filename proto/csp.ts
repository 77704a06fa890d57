// The one Content-Security-Policy of every page Keyport serves: the renderer, by both desktop hosts
// (main/csp.ts, Electron security checklist §7), and keyport-auth's web UI (auth/web/http.ts). Nothing
// inline, nothing remote: scripts, styles and fonts come from the page's own origin, and the only
// connection it may open is back to that origin (the browser host's WebSocket: CSP 3 lets 'self' match ws:
// on the same host and port); no framing.
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
