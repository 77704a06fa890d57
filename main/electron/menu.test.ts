import type { MenuItemConstructorOptions } from 'electron';
import { describe, expect, it } from 'vitest';
import { applicationMenuTemplate } from './menu';

function roles(items: MenuItemConstructorOptions[]): string[] {
  return items.flatMap((item) => [
    ...(item.role ? [item.role] : []),
    ...(Array.isArray(item.submenu) ? roles(item.submenu) : []),
  ]);
}

const developerRoles = ['reload', 'forceReload', 'toggleDevTools'];

describe('applicationMenuTemplate', () => {
  it.each([true, false])('has App, Edit, View and Window menus (macOS: %s)', (isMac) => {
    const template = applicationMenuTemplate({ appName: 'Keyport Connect', isMac, devTools: false });
    expect(template.map((item) => item.label)).toEqual(['Keyport Connect', 'Edit', 'View', 'Window']);
    expect(roles(template)).toEqual(
      expect.arrayContaining(['quit', 'copy', 'paste', 'selectAll', 'minimize']),
    );
  });

  it.each([true, false])('offers no reload or DevTools in production (macOS: %s)', (isMac) => {
    const found = roles(applicationMenuTemplate({ appName: 'Keyport Connect', isMac, devTools: false }));
    for (const role of developerRoles) expect(found).not.toContain(role);
    expect(found.map((role) => role.toLowerCase())).not.toContain('toggledevtools');
  });

  it('offers reload and DevTools in development', () => {
    const found = roles(
      applicationMenuTemplate({ appName: 'Keyport Connect', isMac: false, devTools: true }),
    );
    expect(found).toEqual(expect.arrayContaining(developerRoles));
  });
});
