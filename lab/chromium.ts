// Debian's Chromium driven by playwright-core, headless, as the tests and benchmarks use it (LAB.md:
// `npx playwright install` cannot download here; these flags keep it off the network and the GPU).
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import type { Backend } from '../main/backend/backend';
import { startBrowserHost } from '../main/browser/host';
import { repoRoot } from './cluster';

export const HEADLESS_CHROMIUM_FLAGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
] as const;

export function launchLabChromium(extraArgs: readonly string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.KEYPORT_CHROMIUM || '/usr/bin/chromium',
    args: [...HEADLESS_CHROMIUM_FLAGS, ...extraArgs],
  });
}

export interface AppInChromium {
  page: Page;
  /** Closes the browser, then the browser host (the backend is the caller's). */
  close(): Promise<void>;
}

/**
 * Keyport Connect's built app (dist/) for `backend`, served by the browser host and loaded in a new page of a
 * lab Chromium. `beforeLoad` sees the page before the app's first load (to listen to its console).
 */
export async function openAppInChromium(
  backend: Backend,
  viewport: { width: number; height: number },
  beforeLoad?: (page: Page) => void,
): Promise<AppInChromium> {
  const host = await startBrowserHost({ backend, distDir: join(repoRoot, 'dist') });
  const browser = await launchLabChromium().catch(async (error: unknown) => {
    await host.close();
    throw error;
  });
  const close = async () => {
    await browser.close();
    await host.close();
  };
  try {
    const page = await browser.newPage({ viewport });
    // Waits are for the screen itself, bounded generously for a loaded machine (npm run test:load).
    page.setDefaultTimeout(60_000);
    beforeLoad?.(page);
    await page.goto(host.url);
    return { page, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/**
 * The flag that makes Chromium accept a lab cluster's HTTPS certificate: the cluster CA's pin (`sha256:HEX`
 * of its SubjectPublicKeyInfo) as the base64 SPKI hash Chromium takes. Only that CA's chain is let through.
 */
export function trustClusterCaFlag(caPin: string): string {
  const hex = caPin.replace(/^sha256:/, '');
  return `--ignore-certificate-errors-spki-list=${Buffer.from(hex, 'hex').toString('base64')}`;
}
