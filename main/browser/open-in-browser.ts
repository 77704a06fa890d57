// How the browser host opens a URL in the person's default browser: `xdg-open URL` (xdg-utils), the freedesktop
// way, with the app's environment (DISPLAY, the XDG folders). Used for the web-session approval's confirm URL,
// which the client core has checked (https, the confirm path, nothing else), and for an SSO login's IdP page
// (https, checked by main/backend/sso-login.ts). A failure never repeats the URL: it carries a single-use
// token, or the SSO request's state.
import { execFile } from 'node:child_process';
import { KeyportError } from '../../proto/errors';
import type { OpenInBrowser } from '../backend/web-approval';

export function openWithXdg(env: NodeJS.ProcessEnv = process.env): OpenInBrowser {
  return (url) =>
    new Promise<void>((resolve, reject) => {
      execFile('xdg-open', [url], { env, timeout: 30_000 }, (error) => {
        if (!error) return resolve();
        const why =
          typeof error.code === 'number' ? `exit status ${error.code}` : String(error.code ?? 'failed');
        reject(
          new KeyportError(
            'UNAVAILABLE',
            `The browser could not be opened (xdg-open: ${why}); is a desktop session running?`,
          ),
        );
      });
    });
}
