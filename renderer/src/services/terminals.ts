// The terminal tabs' state over window.keyport: each tab opens a session (terminals.open, which runs the
// ceremony: the touch prompt shows through PromptsHost), receives its bytes (onTerminalData) and learns why
// it ended (onTerminalEnded). Bytes that arrive before a tab's xterm is attached wait in a bounded buffer.
// Only terminal bytes and reasons come in; keystrokes and sizes go out.
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import type { ContractError, KeyportApi, TerminalEnded } from '../../../preload/contract';
import { describeError } from './errors';
import { call } from './keyport';

export interface TerminalTab {
  /** The tab's own key (the session's id is known only once it is open). */
  key: string;
  cluster: string;
  node: string;
  login: string;
  /** The backend's session id, once open. */
  id?: string;
  status: 'connecting' | 'open' | 'ended';
  /** Why it ended: the session's ending, or the ceremony's error (it never opened). */
  ended?: { message: string; reason: TerminalEnded['reason'] | 'notOpened' | 'cancelled'; exitCode?: number };
}

export interface TerminalSink {
  write(data: string): void;
}

/** Bytes kept per session until its xterm is attached (a tab opened in the background). */
const PENDING_MAX = 1024 * 1024;

/** The ceremony's refusal as the terminal tab says it: what happened, and what to do next. */
export function notOpenedText(error: ContractError, login: string, node: string): string {
  switch (error.code) {
    case 'ACCESS_DENIED':
      return `You may not log in to ${node} as "${login}". Pick a login your roles allow there, or ask an admin for access.`;
    case 'NOT_FOUND':
      return `${node} is not registered on this cluster any more. Refresh the Servers list.`;
    case 'DEVICE_TRUST_REQUIRED':
      return `${node} needs a trusted device. Enroll this device (Account → This device), then sign in again and reconnect.`;
    case 'MFA_FAILED':
    case 'MFA_REQUIRED':
      return `The security key's answer was not accepted for ${login}@${node}. Reconnect and tap a key registered to you.`;
    case 'CANCELLED':
      return 'Cancelled: no session was opened.';
    case 'RESOURCE_EXHAUSTED':
      return error.message;
    default:
      return describeError(error);
  }
}

export interface TerminalTabs {
  tabs: TerminalTab[];
  activeKey: string | null;
  setActive(key: string): void;
  open(request: { cluster: string; node: string; login: string; cols: number; rows: number }): void;
  /** Closes the tab (and its session, if it is still open). */
  close(key: string): void;
  /** Where `id`'s bytes go; what arrived before is written at once. */
  attach(id: string, sink: TerminalSink): () => void;
}

export function useTerminalTabs(api: KeyportApi): TerminalTabs {
  const [tabs, setTabs] = useState<TerminalTab[]>([]);
  const [activeKey, setActiveKey] = useState<string | null>(null);
  const sinks = useRef(new Map<string, TerminalSink>());
  const pending = useRef(new Map<string, string>());
  /** Endings of sessions whose terminals.open answer has not arrived yet. */
  const early = useRef(new Map<string, TerminalTab['ended']>());
  /** Tabs closed while their session was still being opened: closed as soon as it opens. */
  const abandoned = useRef(new Set<string>());
  const nextKey = useRef(1);
  const current = useRef(tabs);
  current.current = tabs;

  const update = useCallback((key: string, change: Partial<TerminalTab>) => {
    setTabs((current) => current.map((tab) => (tab.key === key ? { ...tab, ...change } : tab)));
  }, []);

  useEffect(() => {
    const stopData = api.onTerminalData(({ id, data }) => {
      const sink = sinks.current.get(id);
      if (sink) return sink.write(data);
      const kept = (pending.current.get(id) ?? '') + data;
      pending.current.set(id, kept.slice(-PENDING_MAX));
    });
    const stopEnded = api.onTerminalEnded(({ id, reason, message, exitCode }) => {
      const ended = { reason, message, ...(exitCode !== undefined ? { exitCode } : {}) };
      if (!current.current.some((tab) => tab.id === id)) early.current.set(id, ended);
      setTabs((all) => all.map((tab) => (tab.id === id ? { ...tab, status: 'ended', ended } : tab)));
    });
    return () => {
      stopData();
      stopEnded();
    };
  }, [api]);

  const open = useCallback<TerminalTabs['open']>(
    (request) => {
      const key = `tab-${nextKey.current++}`;
      const { cluster, node, login } = request;
      setTabs((current) => [...current, { key, cluster, node, login, status: 'connecting' }]);
      setActiveKey(key);
      void call(() => api.terminals.open(request)).then((result) => {
        if (abandoned.current.delete(key)) {
          if (result.ok) void call(() => api.terminals.close({ id: result.value.id }));
          return;
        }
        if (result.ok) {
          const { id } = result.value;
          const ended = early.current.get(id);
          early.current.delete(id);
          update(key, ended ? { id, status: 'ended', ended } : { id, status: 'open' });
        } else {
          update(key, {
            status: 'ended',
            ended: {
              reason: result.error.code === 'CANCELLED' ? 'cancelled' : 'notOpened',
              message: notOpenedText(result.error, login, node),
            },
          });
        }
      });
    },
    [api, update],
  );

  const close = useCallback(
    (key: string) => {
      const tab = current.current.find((t) => t.key === key);
      if (tab?.status === 'connecting') abandoned.current.add(key);
      const id = tab?.id;
      if (id) {
        if (tab.status === 'open') void call(() => api.terminals.close({ id }));
        sinks.current.delete(id);
        pending.current.delete(id);
      }
      const rest = current.current.filter((t) => t.key !== key);
      setTabs(rest);
      setActiveKey((active) => (active === key ? (rest.at(-1)?.key ?? null) : active));
    },
    [api],
  );

  const attach = useCallback((id: string, sink: TerminalSink) => {
    sinks.current.set(id, sink);
    const kept = pending.current.get(id);
    pending.current.delete(id);
    if (kept) sink.write(kept);
    return () => {
      if (sinks.current.get(id) === sink) sinks.current.delete(id);
    };
  }, []);

  return useMemo(
    () => ({ tabs, activeKey, setActive: setActiveKey, open, close, attach }),
    [tabs, activeKey, open, close, attach],
  );
}
