import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { electronBinary } from './locate';

let root: string;
let packageDir: string;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'keyport-locate-'));
  packageDir = join(root, 'node_modules', 'electron');
  mkdirSync(join(packageDir, 'dist'), { recursive: true });
});

afterEach(() => rmSync(root, { recursive: true, force: true }));

function installBinary(named: string, mode = 0o755): string {
  const binary = join(packageDir, 'dist', named);
  mkdirSync(join(binary, '..'), { recursive: true });
  writeFileSync(binary, '#!/bin/sh\n');
  chmodSync(binary, mode);
  return binary;
}

describe('electronBinary', () => {
  it('finds the binary that path.txt names under dist/', () => {
    const binary = installBinary('electron');
    writeFileSync(join(packageDir, 'path.txt'), 'electron');
    expect(electronBinary(root)).toBe(binary);
  });

  it('finds a macOS-style nested binary and tolerates a trailing newline', () => {
    const binary = installBinary(join('Electron.app', 'Contents', 'MacOS', 'Electron'));
    writeFileSync(join(packageDir, 'path.txt'), 'Electron.app/Contents/MacOS/Electron\n');
    expect(electronBinary(root)).toBe(binary);
  });

  it('is undefined without the electron package or without path.txt (binary never downloaded)', () => {
    expect(electronBinary(join(root, 'nowhere'))).toBeUndefined();
    installBinary('electron');
    expect(electronBinary(root)).toBeUndefined();
  });

  it('is undefined when path.txt names a binary that is missing, empty or a directory', () => {
    writeFileSync(join(packageDir, 'path.txt'), 'electron');
    expect(electronBinary(root)).toBeUndefined();
    writeFileSync(join(packageDir, 'path.txt'), '  \n');
    expect(electronBinary(root)).toBeUndefined();
    mkdirSync(join(packageDir, 'dist', 'electron'));
    writeFileSync(join(packageDir, 'path.txt'), 'electron');
    expect(electronBinary(root)).toBeUndefined();
  });

  it.runIf(process.platform !== 'win32')('is undefined when the binary is not executable', () => {
    installBinary('electron', 0o644);
    writeFileSync(join(packageDir, 'path.txt'), 'electron');
    expect(electronBinary(root)).toBeUndefined();
  });

  it('refuses a path.txt that points outside dist/', () => {
    writeFileSync(join(root, 'evil'), '#!/bin/sh\n');
    chmodSync(join(root, 'evil'), 0o755);
    writeFileSync(join(packageDir, 'path.txt'), '../../../evil');
    expect(electronBinary(root)).toBeUndefined();
    writeFileSync(join(packageDir, 'path.txt'), join(root, 'evil'));
    expect(electronBinary(root)).toBeUndefined();
  });
});
