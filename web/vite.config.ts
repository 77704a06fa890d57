import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';
import { fileURLToPath } from 'node:url';

// The web UI keyport-auth serves (auth/web/server.ts) from dist/web, under a CSP without inline script:
// Vite's module preload polyfill is off, so the built index holds no inline code.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  plugins: [react()],
  build: { outDir: '../dist/web', emptyOutDir: true, modulePreload: { polyfill: false } },
});
