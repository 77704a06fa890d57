// Builds Keyport Connect's browser-side bundles into dist/ with Vite:
//   dist/renderer/                the React renderer (renderer/vite.config.ts)
//   dist/preload/preload.cjs      the Electron preload (sandboxed, so one self-contained CommonJS file)
//   dist/preload/keyport-bridge.js  the browser host's window.keyport over a WebSocket (classic script)
//   dist/electron/main.mjs        the Electron host's main process (dependencies stay external)
//   dist/electron/icons/          the tray icon (main/electron/assets), at 1x and 2x
//   dist/web/                     keyport-auth's web UI (web/vite.config.ts), served by its web listener
// `node build-app.mjs --if-stale` skips the build when dist/ is newer than every source file.
import { cp, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';
import { isOlderThanSources } from './build-stale.mjs';

const root = fileURLToPath(new URL('.', import.meta.url));
// What ships is a production build, whoever asks for it: a test runner sets NODE_ENV=test, and React's
// development build (three times larger, and slower) would be bundled then.
process.env.NODE_ENV = 'production';
const sources = ['renderer', 'preload', 'main', 'client', 'proto', 'web', 'build-app.mjs', 'package.json'];

function isStale() {
  // Both outputs: the renderer's and the web UI's; either one missing or older than a source rebuilds.
  return [join(root, 'dist', 'renderer', 'index.html'), join(root, 'dist', 'web', 'index.html')].some(
    (stamp) => isOlderThanSources(stamp, root, sources),
  );
}

const quiet = { logLevel: 'warn', configFile: false, root };

async function buildPreload() {
  await build({
    ...quiet,
    build: {
      outDir: 'dist/preload',
      emptyOutDir: true,
      minify: false,
      lib: { entry: 'preload/electron-preload.ts', formats: ['cjs'], fileName: () => 'preload.cjs' },
      rollupOptions: { external: ['electron'] },
    },
  });
  await build({
    ...quiet,
    build: {
      outDir: 'dist/preload',
      emptyOutDir: false,
      lib: {
        entry: 'preload/browser-bridge.ts',
        formats: ['iife'],
        name: 'keyportBridge',
        fileName: () => 'keyport-bridge.js',
      },
    },
  });
}

async function buildElectronMain() {
  const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'));
  const dependencies = Object.keys({ ...pkg.dependencies, ...pkg.devDependencies });
  await build({
    ...quiet,
    build: {
      outDir: 'dist/electron',
      emptyOutDir: true,
      ssr: 'main/electron/main.ts',
      target: 'node20',
      rollupOptions: {
        external: (id) =>
          id === 'electron' ||
          id.startsWith('node:') ||
          dependencies.some((dep) => id === dep || id.startsWith(`${dep}/`)),
        output: { format: 'es', entryFileNames: 'main.mjs' },
      },
    },
  });
  // Read at runtime by path (paths.ts trayIcon), so copied as they are rather than bundled.
  for (const icon of ['tray.png', 'tray@2x.png']) {
    await cp(join(root, 'main', 'electron', 'assets', icon), join(root, 'dist', 'electron', 'icons', icon));
  }
}

if (process.argv.includes('--if-stale') && !isStale()) {
  console.log('dist/ is up to date.');
} else {
  await build({ logLevel: 'warn', configFile: join(root, 'renderer', 'vite.config.ts') });
  await buildPreload();
  await buildElectronMain();
  await build({ logLevel: 'warn', configFile: join(root, 'web', 'vite.config.ts') });
  console.log('Built dist/renderer, dist/preload, dist/electron and dist/web.');
}
