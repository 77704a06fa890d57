// The tray icon and its menu (issue 13): tray-menu.ts makes the items from the trusted clusters, their
// profiles and the time; this file reads those from KEYPORT_HOME (the profile store the backend and the CLI
// share; not through the handler table, whose calls are the renderer's), builds Electron's menu,
// runs the items' actions, and builds the menu again whenever a session changes: a sign-in, a relogin, a
// sign-out (onProfileChanged, the CLI's too through the profile watcher) and an expiry (onSessionNotice's
// "ended"). Electron on Linux shows a context menu set once as it was then, so each change sets a new one.
import type * as electron from 'electron';
import { z } from 'zod';
import type { ProfileStore } from '../../client/profiles';
import type { EventName, EventPayloads, Unsubscribe } from '../../preload/contract';
import type { Clock } from '../../proto/clock';
import { trayMenu } from './tray-menu';
import type { TrayAction, TrayItem } from './tray-menu';

export const TRAY_TOOLTIP = 'Keyport Connect';

/** What the tray hears from the backend: when to read again. */
export interface TrayBackend {
  on<E extends EventName>(event: E, listener: (payload: EventPayloads[E]) => void): Unsubscribe;
}

// What the menu reads of the files; one written differently (by hand, by another version) is left out.
const clusterShape = z.object({
  address: z.string().min(1).max(260),
  name: z.string().max(255),
  lastUser: z.string().max(255).optional(),
});
const profileShape = z.object({
  address: z.string().min(1).max(260),
  cluster: z.string().max(255),
  user: z.string().min(1).max(255),
  expiresMs: z.number(),
});

export interface TrayOptions {
  Tray: new (image: string) => Pick<electron.Tray, 'setToolTip' | 'setContextMenu' | 'on' | 'destroy'>;
  Menu: { buildFromTemplate(template: electron.MenuItemConstructorOptions[]): electron.Menu };
  /** The icon's PNG (its @2x beside it, which Electron picks on a high-density screen). */
  icon: string;
  platform: NodeJS.Platform;
  profiles: Pick<ProfileStore, 'listTrustedClusters' | 'listProfiles'>;
  backend: TrayBackend;
  clock: Clock;
  /** What the items do. */
  run(action: TrayAction): void;
}

export interface AppTray {
  /** Builds the menu from the backend's state now; resolves once a build that started after the call ended. */
  refresh(): Promise<void>;
  /** A trusted cluster's name as the menu last read it (its address when unknown), for notifications. */
  clusterName(address: string): string;
  destroy(): void;
}

export function createTray(options: TrayOptions): AppTray {
  const { backend, run } = options;
  const tray = new options.Tray(options.icon);
  tray.setToolTip(TRAY_TOOLTIP);
  // Windows opens a tray app's window on a click (the menu is the right button's); macOS and Linux show
  // the menu on a click.
  if (options.platform === 'win32') tray.on('click', () => run({ kind: 'open' }));

  let destroyed = false;
  const names = new Map<string, string>();
  const build = async () => {
    const items = await readMenu(options.profiles, options.clock, names);
    if (!destroyed)
      tray.setContextMenu(options.Menu.buildFromTemplate(items.map((item) => menuItem(item, run))));
  };
  let running: Promise<void> | undefined;
  let queued: Promise<void> | undefined;
  const refresh = (): Promise<void> => {
    if (!running) {
      running = build()
        .catch((error: unknown) =>
          console.error('The tray menu could not be updated:', (error as Error).message),
        )
        .finally(() => (running = undefined));
      return running;
    }
    queued ??= running.then(() => {
      queued = undefined;
      return refresh();
    });
    return queued;
  };

  const unsubscribe = [
    backend.on('onProfileChanged', () => void refresh()),
    backend.on('onSessionNotice', (notice) => {
      if (notice.kind === 'ended') void refresh();
    }),
  ];
  void refresh();

  return {
    refresh,
    clusterName: (address) => names.get(address) ?? address,
    destroy() {
      if (destroyed) return;
      destroyed = true;
      for (const stop of unsubscribe) stop();
      tray.destroy();
    },
  };
}

async function readMenu(
  store: TrayOptions['profiles'],
  clock: Clock,
  names: Map<string, string>,
): Promise<TrayItem[]> {
  const [trusted, saved] = await Promise.all([store.listTrustedClusters(), store.listProfiles()]);
  const clusters = trusted.flatMap((cluster) => {
    const parsed = clusterShape.safeParse(cluster);
    return parsed.success ? [parsed.data] : [];
  });
  const profiles = new Map<string, z.infer<typeof profileShape>>();
  for (const profile of saved) {
    const parsed = profileShape.safeParse(profile);
    if (parsed.success) profiles.set(parsed.data.address, parsed.data);
  }
  names.clear();
  for (const cluster of clusters) names.set(cluster.address, cluster.name || cluster.address);
  return trayMenu({ clusters, profiles, now: clock() });
}

function menuItem(item: TrayItem, run: (action: TrayAction) => void): electron.MenuItemConstructorOptions {
  switch (item.kind) {
    case 'separator':
      return { type: 'separator' };
    case 'status':
      return { label: item.label, enabled: false };
    case 'action':
      return { label: item.label, click: () => run(item.action) };
  }
}
