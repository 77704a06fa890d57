// keyport:// links as Electron delivers them: macOS sends `open-url`; Windows and Linux start the app with
// the link on its command line, which reaches the running instance as `second-instance` argv through the
// single-instance lock (or is the first launch's own argv). main.ts hands each link to the backend, which
// parses it (main/backend/deep-link.ts) and only fills in a screen. A link's text is never logged: it
// carries a token.
export { DEEP_LINK_SCHEME } from '../backend/deep-link';
import { DEEP_LINK_SCHEME } from '../backend/deep-link';

/** The first keyport:// argument of a command line (how Windows and Linux deliver a link). */
export function deepLinkInArgv(argv: readonly string[]): string | undefined {
  return argv.find((argument) => argument.toLowerCase().startsWith(`${DEEP_LINK_SCHEME}://`));
}
