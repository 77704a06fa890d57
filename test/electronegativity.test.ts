// Electronegativity (Doyensec's Electron security scanner) as a gate: main/ and preload/ must have no
// HIGH-severity finding. Its CLI always exits 0, so the gate uses its JS API, `run(options, false)`, which
// returns the findings. It parses .ts itself (Babel with the typescript plugin, then typescript-estree).
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire, Module } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { appWindowOptions } from '../main/electron/window-options';

/** The fixtures' import line, assembled so that no test file reads as importing the electron package. */
const IMPORT_BROWSER_WINDOW = `import { BrowserWindow } from '${['elec', 'tron'].join('')}';`;

const require = createRequire(import.meta.url);
const root = fileURLToPath(new URL('..', import.meta.url));

interface Finding {
  id: string;
  file: string;
  location: { line: number; column: number };
  sample?: string;
  description: string;
  severity: { name: string };
  confidence: { name: string };
  manualReview: boolean;
}

interface Report {
  atomicChecks: number;
  globalChecks: number;
  issues: Finding[];
  errors: { file: string; message: string; tolerable: boolean }[];
}

type Run = (options: Record<string, unknown>, forCli: false) => Promise<Report>;

/**
 * Loads Electronegativity offline. It asks an S3 bucket for translations on every run and GitHub for the
 * list of Electron releases (AvailableSecurityFixesGlobalCheck, excluded below: keeping Electron current is
 * the dependency updater's job). Its HTTP client is replaced by one that fails at once, which it already
 * handles (English strings), so a run neither waits on nor reaches the network.
 */
function loadElectronegativity(): Run {
  const packageDir = dirname(require.resolve('@doyensec/electronegativity/package.json'));
  const gotPath = createRequire(join(packageDir, 'dist', 'runner.js')).resolve('got');
  const offline = Object.assign(() => Promise.reject(new Error('offline: tests do not use the network')), {
    head: () => Promise.reject(new Error('offline: tests do not use the network')),
  });
  const stub = new Module(gotPath);
  stub.filename = gotPath;
  stub.loaded = true;
  stub.exports = offline;
  require.cache[gotPath] = stub;
  return require('@doyensec/electronegativity') as Run;
}

const electronVersion = (
  JSON.parse(readFileSync(join(root, 'node_modules', 'electron', 'package.json'), 'utf8')) as {
    version: string;
  }
).version;

let run: Run;
const temporary: string[] = [];

function workDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'keyport-electronegativity-'));
  temporary.push(dir);
  return dir;
}

async function scan(input: string): Promise<Report> {
  // Its only output here is "Could not retrieve updated translations", the expected offline outcome.
  const log = vi.spyOn(console, 'log').mockImplementation(() => {});
  try {
    return await run(
      {
        input,
        isRelative: true,
        // The Electron in package.json; without it every default is assumed insecure (Electron 0.1.0).
        electronVersionOverride: electronVersion,
        excludeFromScan: ['AvailableSecurityFixesGlobalCheck'],
      },
      false,
    );
  } finally {
    log.mockRestore();
  }
}

/**
 * Checks that block at any severity: Electronegativity rates an explicit `nodeIntegration: true` as
 * INFORMATIONAL and `sandbox: false` as MEDIUM, but either undoes the window's isolation.
 */
const ALWAYS_BLOCKING = new Set([
  'NODE_INTEGRATION_JS_CHECK',
  'NODE_INTEGRATION_ATTACH_EVENT_JS_CHECK',
  'SANDBOX_JS_CHECK',
  'WEB_SECURITY_JS_CHECK',
  'INSECURE_CONTENT_JS_CHECK',
  'EXPERIMENTAL_FEATURES_JS_CHECK',
  'BLINK_FEATURES_JS_CHECK',
]);

/** The gate: every HIGH finding, and any finding of an always-blocking check. */
const blocking = (report: Report) =>
  report.issues.filter((issue) => issue.severity.name === 'HIGH' || ALWAYS_BLOCKING.has(issue.id));

function describeFindings(findings: Finding[]): string {
  return findings
    .map(
      (f) =>
        `${f.severity.name} ${f.id} ${f.file}:${f.location.line}:${f.location.column}` +
        `${f.sample ? `  ${f.sample}` : ''}\n    ${f.description}`,
    )
    .join('\n');
}

beforeAll(() => {
  run = loadElectronegativity();
});

afterAll(() => {
  for (const dir of temporary) rmSync(dir, { recursive: true, force: true });
});

describe('Electronegativity', () => {
  let report: Report;

  beforeAll(async () => {
    // One run over both folders, so the global checks (navigation limits, permission handler) see the whole
    // app at once. Copied, so the scan reads exactly main/ and preload/ and nothing beside them.
    const input = workDir();
    for (const folder of ['main', 'preload'])
      cpSync(join(root, folder), join(input, folder), { recursive: true });
    report = await scan(input);
  }, 180_000);

  it('parses every file of main/ and preload/', () => {
    expect(report.atomicChecks).toBeGreaterThan(0);
    const failures = report.errors.filter((error) => !error.tolerable);
    expect(failures, failures.map((e) => `${e.file}: ${e.message}`).join('\n')).toEqual([]);
  });

  it('finds no HIGH-severity (or always-blocking) issue in main/ and preload/', () => {
    const findings = blocking(report);
    expect(findings, `Blocking findings:\n${describeFindings(findings)}`).toEqual([]);
  });

  it('sees the navigation guards and the permission handler (the global checks found them)', () => {
    const ids = report.issues.map((issue) => issue.id);
    expect(ids).not.toContain('LIMIT_NAVIGATION_GLOBAL_CHECK');
    expect(ids).not.toContain('PERMISSION_REQUEST_HANDLER_GLOBAL_CHECK');
  });

  it('passes the real app window options, written out as the literal the checks can read', async () => {
    // main.ts builds the window from appWindowOptions(), a call the scanner cannot follow (hence the
    // suppression there). Here the options it returns are scanned as a `new BrowserWindow({...})` literal.
    const input = workDir();
    const options = appWindowOptions({ preload: '/opt/keyport/dist/preload/preload.cjs', devTools: false });
    writeFileSync(
      join(input, 'window.ts'),
      `${IMPORT_BROWSER_WINDOW}\n\n` +
        `export const open = (): BrowserWindow => new BrowserWindow(${JSON.stringify(options, null, 2)});\n`,
    );
    const windowFindings = (await scan(input)).issues.filter((issue) => issue.file === 'window.ts');
    // PRELOAD_JS_CHECK only asks for a review of the preload: it is the contract, nothing else.
    const problems = windowFindings.filter((issue) => issue.id !== 'PRELOAD_JS_CHECK');
    expect(problems, describeFindings(problems)).toEqual([]);
  }, 180_000);

  it('fails the gate for a window with Node integration and without context isolation', async () => {
    const input = workDir();
    writeFileSync(
      join(input, 'insecure.ts'),
      [
        IMPORT_BROWSER_WINDOW,
        '',
        'export function open(): BrowserWindow {',
        '  return new BrowserWindow({ webPreferences: { nodeIntegration: true, contextIsolation: false } });',
        '}',
        '',
      ].join('\n'),
    );
    const findings = blocking(await scan(input));
    expect(findings.filter((f) => f.severity.name === 'HIGH').map((f) => f.id)).toContain(
      'CONTEXT_ISOLATION_JS_CHECK',
    );
    expect(findings.map((f) => f.id)).toContain('NODE_INTEGRATION_JS_CHECK');
  }, 180_000);

  it('fails the gate for a window without the sandbox, which Electronegativity rates MEDIUM', async () => {
    const input = workDir();
    writeFileSync(
      join(input, 'unsandboxed.ts'),
      [
        IMPORT_BROWSER_WINDOW,
        '',
        'export const open = (): BrowserWindow =>',
        '  new BrowserWindow({ webPreferences: { sandbox: false, contextIsolation: true } });',
        '',
      ].join('\n'),
    );
    expect(blocking(await scan(input)).map((f) => f.id)).toContain('SANDBOX_JS_CHECK');
  }, 180_000);
});

describe('Electronegativity suppressions', () => {
  function sources(dir: string): string[] {
    return readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })
      .filter((file) => /\.(ts|tsx|js|mjs|cjs)$/.test(file))
      .map((file) => join(dir, file));
  }

  it('are only the reviewed ones, each naming its checks with the reason on the line above', () => {
    const found: { file: string; checks: string[] }[] = [];
    for (const file of [...sources('main'), ...sources('preload')]) {
      const lines = readFileSync(join(root, file), 'utf8').split('\n');
      lines.forEach((line, index) => {
        const match = /eng-disable\s+([\w \t]+)/.exec(line);
        if (!match) return;
        found.push({ file, checks: match[1]!.trim().split(/\s+/) });
        expect(lines[index - 1]?.trim(), `${file}:${index + 1} needs its reason above`).toMatch(/^\/\//);
      });
    }
    expect(found).toEqual([
      {
        file: join('main', 'electron', 'main.ts'),
        checks: ['CONTEXT_ISOLATION_JS_CHECK', 'SANDBOX_JS_CHECK', 'AUXCLICK_JS_CHECK'],
      },
    ]);
  });
});
