// Opening the IdP's sign-in URL for `keyport login --auth=NAME`, as tsh does: the system browser
// (xdg-open on Linux, open on macOS), with the URL printed as well in case no browser opens; with
// --browser=none only printed, for a person who opens it in a browser on this machine.
import { spawn } from 'node:child_process';
import type { Prompter } from './prompts';

const OPENERS: Partial<Record<NodeJS.Platform, string>> = { linux: 'xdg-open', darwin: 'open' };

export function openSignInUrl(url: string, printOnly: boolean, prompter: Pick<Prompter, 'say'>): void {
  if (printOnly) {
    prompter.say('Open this URL in a browser on this machine to sign in:');
    prompter.say(url);
    return;
  }
  const opener = OPENERS[process.platform];
  if (opener) {
    // The URL is one argument of its own: no shell sees it.
    const child = spawn(opener, [url], { stdio: 'ignore', detached: true });
    child.on('error', () => {});
    child.unref();
  }
  prompter.say('If the browser does not open, open this URL to sign in:');
  prompter.say(url);
}
