// The lab's desktop notification server: a private session bus (lab/session-bus.ts) and a small listener
// on it that owns org.freedesktop.Notifications, as a desktop's notification daemon does (Desktop
// Notifications Specification 1.2: Notify, CloseNotification, GetCapabilities, GetServerInformation; the signals NotificationClosed and ActionInvoked). It shows nothing: it records
// what it receives, and a test "clicks" a notification with click(), which sends ActionInvoked and then
// NotificationClosed (reason 2, dismissed by the user), as a daemon does when the person clicks one.
// Written with @homebridge/dbus-native, a D-Bus stack other than the one the host's notify-send uses
// (libnotify over GDBus), so neither side can hide a mistake of the other's.
import * as dbusNative from '@homebridge/dbus-native';
import { startPrivateSessionBus } from './session-bus';

export const NOTIFICATIONS_BUS_NAME = 'org.freedesktop.Notifications';
export const NOTIFICATIONS_PATH = '/org/freedesktop/Notifications';
export const NOTIFICATIONS_INTERFACE = 'org.freedesktop.Notifications';
/** NotificationClosed reasons (spec, "org.freedesktop.Notifications.NotificationClosed"). */
export const CLOSED_EXPIRED = 1;
export const CLOSED_DISMISSED = 2;
export const CLOSED_BY_CALL = 3;

// RequestName flag DO_NOT_QUEUE, and its answer PRIMARY_OWNER (D-Bus specification, "Message Bus Messages").
const DO_NOT_QUEUE = 4;
const PRIMARY_OWNER = 1;

/** One Notify call as the server received it. */
export interface ReceivedNotification {
  id: number;
  appName: string;
  replacesId: number;
  appIcon: string;
  summary: string;
  body: string;
  /** Pairs flattened as the spec sends them: [key, label, key, label, ...]. */
  actions: string[];
  hintNames: string[];
  expireTimeout: number;
  /** The unique bus name of the client that sent it. */
  sender: string;
  /** Set once closed: CLOSED_* above. */
  closedReason?: number;
}

export interface LabNotifications {
  /** DBUS_SESSION_BUS_ADDRESS of the private bus: merge `env` over a host's environment. */
  busAddress: string;
  env: { DBUS_SESSION_BUS_ADDRESS: string };
  /** Every notification received so far, in order. */
  readonly received: readonly ReceivedNotification[];
  /** Resolves once `count` notifications have been received (or rejects after `timeoutMs`). */
  waitForCount(count: number, timeoutMs?: number): Promise<ReceivedNotification[]>;
  /**
   * The person clicks notification `id` (its `action`, "default" for the body): ActionInvoked, then
   * NotificationClosed (dismissed). Throws for an unknown or closed id, or an action it does not offer.
   */
  click(id: number, action?: string): void;
  /** Ends the listener and the bus (by PID) and removes the bus folder. Safe to call twice. */
  stop(): Promise<void>;
}

/** The part of @homebridge/dbus-native used here (its index.d.ts declares less than it has). */
interface NativeBus {
  name?: string;
  connection: { on(event: 'error', listener: (error: Error) => void): void; end(): void };
  requestName(name: string, flags: number, callback: (error: unknown, code?: number) => void): void;
  exportInterface(implementation: object, path: string, description: object): void;
  sendSignal(path: string, iface: string, name: string, signature: string, args: unknown[]): void;
}
interface NativeModule {
  sessionBus(options: { busAddress: string }): NativeBus;
}

/** What dbus-native passes a method after the body. */
interface IncomingCall {
  signature?: string;
  sender?: string;
}

/** An error the bus sends back to the caller, with a D-Bus error name. */
function dbusError(name: string, message: string): Error {
  return Object.assign(new Error(message), { dbusName: name });
}

export async function startLabNotifications(
  options: { startTimeoutMs?: number } = {},
): Promise<LabNotifications> {
  const startTimeoutMs = options.startTimeoutMs ?? 20_000;
  const sessionBus = await startPrivateSessionBus({ prefix: 'kp-notify-', startTimeoutMs });
  let bus: NativeBus | undefined;
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      bus?.connection.end();
      await sessionBus.stop();
    })();
    return stopping;
  };

  try {
    const busAddress = sessionBus.address;
    bus = (dbusNative as unknown as NativeModule).sessionBus({ busAddress });
    bus.connection.on('error', () => {
      // The bus went away (stop()); nothing is waiting on it.
    });
    const server = notificationServer(bus);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error('lab notifications: RequestName timed out')),
        startTimeoutMs,
      );
      bus?.requestName(NOTIFICATIONS_BUS_NAME, DO_NOT_QUEUE, (error, code) => {
        clearTimeout(timer);
        if (error || code !== PRIMARY_OWNER) {
          reject(
            new Error(`lab notifications: cannot own ${NOTIFICATIONS_BUS_NAME} (${String(error ?? code)})`),
          );
        } else resolve();
      });
    });
    return { busAddress, env: { DBUS_SESSION_BUS_ADDRESS: busAddress }, ...server, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** The org.freedesktop.Notifications object, exported on `bus`. */
function notificationServer(bus: NativeBus): Pick<LabNotifications, 'received' | 'waitForCount' | 'click'> {
  const received: ReceivedNotification[] = [];
  const waiters = new Set<() => void>();
  let lastId = 0;

  const signal = (name: string, signature: string, args: unknown[]) =>
    bus.sendSignal(NOTIFICATIONS_PATH, NOTIFICATIONS_INTERFACE, name, signature, args);
  const close = (notification: ReceivedNotification, reason: number) => {
    notification.closedReason = reason;
    signal('NotificationClosed', 'uu', [notification.id, reason]);
  };
  const open = (id: number) => received.find((n) => n.id === id && n.closedReason === undefined);

  /**
   * dbus-native hands a method the message's body and then the message itself, whatever the body's
   * signature: a call with the wrong one is refused here (InvalidArgs), before any argument is read.
   */
  const checked =
    (signature: string, method: (args: unknown[], message: IncomingCall) => unknown) =>
    (...received: unknown[]) => {
      const message = received.at(-1) as IncomingCall;
      if ((message.signature ?? '') !== signature) {
        return dbusError(
          'org.freedesktop.DBus.Error.InvalidArgs',
          `expected arguments of type (${signature})`,
        );
      }
      return method(received.slice(0, -1), message);
    };

  const implementation = {
    GetCapabilities: checked('', () => ['actions', 'body']),
    GetServerInformation: checked('', () => ['Keyport lab notifications', 'Keyport', '1.0', '1.2']),
    Notify: checked('susssasa{sv}i', (args, message) => {
      const [appName, replacesId, appIcon, summary, body, actions, hints, expireTimeout] = args as [
        string,
        number,
        string,
        string,
        string,
        string[],
        [string, unknown][],
        number,
      ];
      if (actions.length % 2 !== 0) {
        return dbusError('org.freedesktop.DBus.Error.InvalidArgs', 'actions are pairs of key and label');
      }
      // Spec: a replaces_id of a live notification keeps its id; otherwise a new id, never 0.
      const replaced = replacesId !== 0 ? open(replacesId) : undefined;
      const id = replaced ? replaced.id : ++lastId;
      if (replaced) received.splice(received.indexOf(replaced), 1);
      received.push({
        id,
        appName,
        replacesId,
        appIcon,
        summary,
        body,
        actions: [...actions],
        hintNames: hints.map(([name]) => name),
        expireTimeout,
        sender: message.sender ?? '',
      });
      for (const wake of [...waiters]) wake();
      return id;
    }),
    CloseNotification: checked('u', ([id]) => {
      const notification = open(id as number);
      // Spec: "If the notification no longer exists, an empty D-BUS Error message is sent back."
      if (!notification) return dbusError('org.freedesktop.Notifications.Error.NotFound', '');
      close(notification, CLOSED_BY_CALL);
      return undefined;
    }),
  };
  bus.exportInterface(implementation, NOTIFICATIONS_PATH, {
    name: NOTIFICATIONS_INTERFACE,
    methods: {
      GetCapabilities: ['', 'as', [], ['capabilities']],
      Notify: [
        'susssasa{sv}i',
        'u',
        ['app_name', 'replaces_id', 'app_icon', 'summary', 'body', 'actions', 'hints', 'expire_timeout'],
        ['id'],
      ],
      CloseNotification: ['u', '', ['id'], []],
      GetServerInformation: ['', 'ssss', [], ['name', 'vendor', 'version', 'spec_version']],
    },
    signals: {
      NotificationClosed: ['uu', 'id', 'reason'],
      ActionInvoked: ['us', 'id', 'action_key'],
    },
  });

  return {
    received,
    waitForCount(count, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (received.length < count) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve([...received]);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(`lab notifications: ${received.length} of ${count} notifications in ${timeoutMs} ms`),
          );
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    click(id, action = 'default') {
      const notification = open(id);
      if (!notification) throw new Error(`lab notifications: no open notification ${id}`);
      const offered = notification.actions.filter((_, index) => index % 2 === 0);
      if (!offered.includes(action)) {
        throw new Error(`lab notifications: notification ${id} offers no "${action}" action`);
      }
      signal('ActionInvoked', 'us', [id, action]);
      close(notification, CLOSED_DISMISSED);
    },
  };
}
