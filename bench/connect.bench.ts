// Keyport Connect through the browser host: (1) from starting the host to an interactive login screen
// in Chromium, against a bare React page with one button served by a plain node:http server and rendered
// by the same browser; (2) the renderer's bundle size gzipped, against that bare React page built by the
// same Vite. Both floors are measured in the same run.
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { mkdtemp, readdir, readFile, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Browser } from 'playwright-core';
import { build } from 'vite';
import react from '@vitejs/plugin-react';
import { parseClusterAddress } from '../client/cluster-trust';
import { ProfileStore } from '../client/profiles';
import { ensureTrustedCluster } from '../client/session';
import { createBackend } from '../main/backend/backend';
import { startBrowserHost } from '../main/browser/host';
import { repoRoot, startLabCluster } from '../lab/cluster';
import { launchLabChromium } from '../lab/chromium';
import { connectClusterConfig } from '../lab/connect';
import { median, report } from './stats';

const STARTS = Number(process.env.BENCH_CONNECT_STARTS ?? 12);
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await files(path)));
    else out.push(path);
  }
  return out;
}

async function gzippedBytes(paths: string[]): Promise<number> {
  let total = 0;
  for (const path of paths) total += gzipSync(await readFile(path), { level: 9 }).length;
  return total;
}

/** The floor page: React rendering one "Sign in" button, built by the same Vite + React plugin. */
async function buildBarePage(dir: string): Promise<string> {
  await mkdir(join(dir, 'src'), { recursive: true });
  await writeFile(
    join(dir, 'index.html'),
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>floor</title></head>' +
      '<body><div id="root"></div><script type="module" src="./src/main.jsx"></script></body></html>',
  );
  await writeFile(
    join(dir, 'src', 'main.jsx'),
    "import { createRoot } from 'react-dom/client';\n" +
      "createRoot(document.getElementById('root')).render(<main><button>Sign in</button></main>);\n",
  );
  const out = join(dir, 'dist');
  await build({
    root: dir,
    base: './',
    logLevel: 'warn',
    configFile: false,
    plugins: [react()],
    resolve: {
      alias: {
        react: join(repoRoot, 'node_modules/react'),
        'react-dom': join(repoRoot, 'node_modules/react-dom'),
      },
    },
    build: { outDir: out, emptyOutDir: true },
  });
  return out;
}

function serveStatic(root: string): Promise<{ server: Server; url: string }> {
  const server = createServer(async (request, response) => {
    const path = new URL(request.url ?? '/', 'http://127.0.0.1').pathname;
    const file = join(root, path === '/' ? 'index.html' : path.replace(/^\/+/, ''));
    try {
      const body = await readFile(file);
      response.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream' });
      response.end(body);
    } catch {
      response.writeHead(404).end();
    }
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      resolve({ server, url: `http://127.0.0.1:${port}/` });
    }),
  );
}

async function timeToButton(browser: Browser, open: () => Promise<{ url: string; close(): Promise<void> }>) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const start = performance.now();
  const target = await open();
  await page.goto(target.url);
  // Interactive: the login button is on screen and enabled (the app has loaded its state).
  await page
    .getByRole('button', { name: 'Sign in', exact: true, disabled: false })
    .waitFor({ state: 'visible' });
  const elapsed = performance.now() - start;
  await context.close();
  await target.close();
  return elapsed;
}

export async function benchConnect() {
  const work = await mkdtemp(join(tmpdir(), 'kp-bench-connect-'));
  const cluster = await startLabCluster({ clusterName: 'bench-connect', configYaml: connectClusterConfig() });
  const browser = await launchLabChromium();
  try {
    const home = join(work, 'home');
    const profiles = new ProfileStore(home);
    await ensureTrustedCluster(profiles, parseClusterAddress(cluster.address), {
      caPin: cluster.caPin,
      prompt: { confirmCaPin: async () => false },
    });
    const bare = await buildBarePage(join(work, 'bare'));
    const distDir = join(repoRoot, 'dist');
    await stat(join(distDir, 'renderer', 'index.html'));

    const openApp = async () => {
      const backend = createBackend({ profiles, keystoreKind: 'file', env: {} });
      await backend.ready;
      const host = await startBrowserHost({ backend, distDir });
      return {
        url: host.url,
        close: async () => {
          await host.close();
          await backend.close();
        },
      };
    };
    const openBare = async () => {
      const { server, url } = await serveStatic(bare);
      return { url, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
    };
    // Warm-up: the browser's first page and Node's first module loads are not what is measured.
    await timeToButton(browser, openApp);
    await timeToButton(browser, openBare);
    const app: number[] = [];
    const floor: number[] = [];
    for (let i = 0; i < STARTS; i++) {
      app.push(await timeToButton(browser, openApp));
      floor.push(await timeToButton(browser, openBare));
    }
    const startLine = report('connect start → interactive login', app, 'bare React page, plain http', floor);

    const appFiles = [
      ...(await files(join(distDir, 'renderer'))),
      join(distDir, 'preload', 'keyport-bridge.js'),
    ].filter((f) => ['.js', '.css', '.html'].includes(extname(f)));
    const bareFiles = (await files(bare)).filter((f) => ['.js', '.css', '.html'].includes(extname(f)));
    const appBytes = await gzippedBytes(appFiles);
    const bareBytes = await gzippedBytes(bareFiles);
    const bundle = {
      bench: 'renderer bundle (gzipped)',
      ratio: Number((appBytes / bareBytes).toFixed(2)),
      measured_gzip_bytes: appBytes,
      floor: 'bare React page, same Vite build',
      floor_gzip_bytes: bareBytes,
      files: appFiles.length,
    };
    console.log(
      `${bundle.bench}: ratio = ${bundle.ratio} (measured ${(appBytes / 1024).toFixed(1)} KiB, floor "${bundle.floor}" ${(bareBytes / 1024).toFixed(1)} KiB)`,
    );
    console.log(JSON.stringify(bundle));
    return { start: startLine, bundle, app_median_ms: median(app) };
  } finally {
    await browser.close();
    await cluster.stop();
    await rm(work, { recursive: true, force: true });
  }
}
