// What the end-to-end tests ask of every screen: no serious or critical accessibility finding (axe-core,
// injected into the page once), and numbered screenshots in a folder of test-results/.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { Page } from 'playwright-core';
import { join } from 'node:path';

const axeSource = readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

export interface AxeFinding {
  id: string;
  impact?: string;
  nodes: string[];
}

interface AxeViolation {
  id: string;
  impact?: string;
  nodes: { target: string[] }[];
}

/** axe-core on what is on screen now: its serious and critical findings (none is the goal). */
export async function accessibilityFindings(page: Page): Promise<AxeFinding[]> {
  if (!(await page.evaluate(() => 'axe' in globalThis))) await page.evaluate(await axeSource);
  return page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run(): Promise<{ violations: AxeViolation[] }> } }).axe;
    const result = await axe.run();
    return result.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')) }));
  });
}

/** A function that saves numbered screenshots of the current page into `dir`. */
export function screenshotter(page: () => Page, dir: string): (name: string) => Promise<void> {
  let step = 0;
  return async (name) => {
    step += 1;
    await page().screenshot({ path: join(dir, `${String(step).padStart(2, '0')}-${name}.png`) });
  };
}
