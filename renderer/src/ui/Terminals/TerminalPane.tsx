// One session's terminal: xterm.js in the renderer, fitted to its panel. Keystrokes and sizes go to the
// backend (terminals.input, terminals.resize); the session's bytes come in through the tab's sink. Nothing
// else crosses: no key, certificate or path reaches this component.
import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import '@xterm/xterm/css/xterm.css';
import { useEffect, useRef } from 'react';
import { useKeyport } from '../../services/KeyportContext';
import { call } from '../../services/keyport';
import type { TerminalSink, TerminalTab } from '../../services/terminals';
import { adoptInlineStyles } from './adopted-styles';

/** preload/contract.ts TERMINAL_INPUT_MAX: a larger paste goes in several messages. */
const INPUT_CHUNK = 8 * 1024;

interface TerminalPaneProps {
  tab: TerminalTab;
  /** The panel shows: fit and focus. */
  visible: boolean;
  attach(id: string, sink: TerminalSink): () => void;
}

export function TerminalPane({ tab, visible, attach }: TerminalPaneProps) {
  const api = useKeyport();
  const box = useRef<HTMLDivElement>(null);
  const terminal = useRef<{ xterm: Terminal; fit: FitAddon } | null>(null);
  const { id, status } = tab;

  useEffect(() => {
    const element = box.current;
    if (!element) return;
    const stopStyles = adoptInlineStyles(element);
    const xterm = new Terminal({
      cursorBlink: true,
      fontFamily: '"Liberation Mono", "DejaVu Sans Mono", monospace',
      fontSize: 14,
      scrollback: 5000,
      theme: { background: '#1b1f24', foreground: '#e6e6e6' },
    });
    const fit = new FitAddon();
    xterm.loadAddon(fit);
    xterm.open(element);
    terminal.current = { xterm, fit };
    return () => {
      terminal.current = null;
      xterm.dispose();
      stopStyles();
    };
  }, []);

  // Once the session is open: its bytes in, keystrokes and sizes out.
  useEffect(() => {
    const current = terminal.current;
    if (!current || !id || status !== 'open') return;
    const { xterm, fit } = current;
    const detach = attach(id, { write: (data) => xterm.write(data) });
    const input = xterm.onData((data) => {
      for (let at = 0; at < data.length; at += INPUT_CHUNK) {
        void call(() => api.terminals.input({ id, data: data.slice(at, at + INPUT_CHUNK) }));
      }
    });
    const resize = xterm.onResize(
      ({ cols, rows }) => void call(() => api.terminals.resize({ id, cols, rows })),
    );
    fit.fit();
    void call(() => api.terminals.resize({ id, cols: xterm.cols, rows: xterm.rows }));
    return () => {
      input.dispose();
      resize.dispose();
      detach();
    };
  }, [api, attach, id, status]);

  useEffect(() => {
    const current = terminal.current;
    if (!current) return;
    current.xterm.options.disableStdin = status === 'ended';
    if (status === 'ended') current.xterm.options.cursorBlink = false;
  }, [status]);

  useEffect(() => {
    const current = terminal.current;
    const element = box.current;
    if (!current || !element || !visible) return;
    current.fit.fit();
    if (status === 'open') current.xterm.focus();
    const observer = new ResizeObserver(() => current.fit.fit());
    observer.observe(element);
    return () => observer.disconnect();
  }, [visible, status]);

  return <div ref={box} className="terminal-box" />;
}
