// `keyport-connect`: Keyport Connect on the browser host (bin/keyport-connect.mjs).
//
//   keyport-connect                 starts the app for KEYPORT_HOME (~/.keyport)
//   keyport-connect open-url LINK   hands a keyport:// link to the app that runs for KEYPORT_HOME, over its
//                                   link socket; starts the app with the link when none runs
//
// A desktop's handler for keyport:// runs the second form (the .desktop file's `Exec=… open-url %u`). A
// packaged Electron app is also called keyport-connect and takes the same command line: it finds the link
// in its argv and hands it on through Electron's single-instance lock. The link's text is never printed.
import { fileURLToPath } from 'node:url';
import { keyportHome } from '../../client/profiles';
import { KeyportError } from '../../proto/errors';
import { sendLink } from '../backend/link-socket';

const USAGE = 'Usage: keyport-connect [open-url keyport://…]';
const distDir = fileURLToPath(new URL('../../dist', import.meta.url));

/** Exit codes: 0 handed over (or the app ran and closed), 1 the link was refused or the app failed, 2 usage. */
export async function main(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const home = keyportHome(env);
  const [command, link, ...rest] = argv;
  if (command === '--help' || command === '-h') {
    console.log(USAGE);
    return 0;
  }
  if (command !== undefined && (command !== 'open-url' || link === undefined || rest.length > 0)) {
    console.error(USAGE);
    return 2;
  }
  if (link !== undefined) {
    let sent;
    try {
      sent = await sendLink(home, link);
    } catch (error) {
      // An app that runs but does not answer: say so, never start a second one beside it.
      console.error(error instanceof Error ? error.message : String(error));
      return 1;
    }
    if (sent.delivered) return 0;
    if (sent.answer) {
      console.error(`Keyport Connect did not open the link: ${sent.answer.message}`);
      return 1;
    }
    // No app runs for this home: this process becomes it, with the link on its first screen.
  }
  return runApp(home, env, link);
}

async function runApp(home: string, env: NodeJS.ProcessEnv, link: string | undefined): Promise<number> {
  let app;
  try {
    // Imported here: handing a link over (the common case) needs none of the app, and starts faster.
    const { startConnectApp } = await import('./app');
    app = await startConnectApp({ home, distDir, env, ...(link !== undefined ? { link } : {}) });
  } catch (error) {
    console.error(error instanceof KeyportError || error instanceof Error ? error.message : String(error));
    return 1;
  }
  if (app.window) {
    console.log('Keyport Connect is open in a Chromium app window.');
  } else {
    console.log('No display here, so no app window: open this URL in a browser on this machine (once):');
    console.log(`  ${app.host.url}`);
  }
  const running = app;
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
    void running.window?.exited.then(resolve);
  });
  await running.close();
  return 0;
}
