// Debian's Chromium driven by playwright-core, headless, as the tests and benchmarks use it (LAB.md:
// `npx playwright install` cannot download here; these flags keep it off the network and the GPU).
import { chromium } from 'playwright-core';
import type { Browser } from 'playwright-core';

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

/**
 * The flag that makes Chromium accept a lab cluster's HTTPS certificate: the cluster CA's pin (`sha256:HEX`
 * of its SubjectPublicKeyInfo) as the base64 SPKI hash Chromium takes. Only that CA's chain is let through.
 */
export function trustClusterCaFlag(caPin: string): string {
  const hex = caPin.replace(/^sha256:/, '');
  return `--ignore-certificate-errors-spki-list=${Buffer.from(hex, 'hex').toString('base64')}`;
}
