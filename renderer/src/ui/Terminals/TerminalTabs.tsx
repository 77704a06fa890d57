// The terminal tabs (WAI-ARIA APG "Tabs"): one per session, named login@node, each panel with its
// terminal, a line that says how the session stands (connecting, connected, or why it ended and what to do
// next) and a button that closes it. Panels stay mounted while hidden, so a tab keeps its screen.
import { useId, useRef } from 'react';
import type { KeyboardEvent } from 'react';
import type { TerminalTab, TerminalTabs as Tabs } from '../../services/terminals';
import { TerminalPane } from './TerminalPane';

function tabLabel(tab: TerminalTab): string {
  const name = `${tab.login}@${tab.node}`;
  return tab.status === 'ended' ? `${name} (ended)` : name;
}

function statusLine(tab: TerminalTab): string {
  const name = `${tab.login}@${tab.node}`;
  if (tab.status === 'connecting') return `Connecting to ${name}…`;
  if (tab.status === 'open') return `Connected to ${name}.`;
  return tab.ended?.message ?? 'The session ended.';
}

/** An ending the person did not ask for, and that needs them: an alert, not a status. */
const isProblem = (tab: TerminalTab) =>
  tab.status === 'ended' && !['exited', 'closed', 'appQuit', 'cancelled'].includes(tab.ended?.reason ?? '');

export function TerminalTabs({ terminals, hidden }: { terminals: Tabs; hidden: boolean }) {
  const { tabs, activeKey, setActive, close, attach } = terminals;
  const headingId = useId();
  const prefix = useId();
  const tabRefs = useRef(new Map<string, HTMLButtonElement>());

  function onKeyDown(event: KeyboardEvent<HTMLDivElement>) {
    const index = tabs.findIndex((tab) => tab.key === activeKey);
    const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
    let next: number | undefined;
    if (step !== undefined) next = (index + step + tabs.length) % tabs.length;
    if (event.key === 'Home') next = 0;
    if (event.key === 'End') next = tabs.length - 1;
    const target = next === undefined ? undefined : tabs[next];
    if (!target) return;
    event.preventDefault();
    setActive(target.key);
    tabRefs.current.get(target.key)?.focus();
  }

  return (
    <section className="screen terminals" aria-labelledby={headingId} hidden={hidden}>
      <h2 id={headingId}>Terminals</h2>
      <div role="tablist" aria-label="Terminal sessions" className="terminal-tablist" onKeyDown={onKeyDown}>
        {tabs.map((tab) => (
          <button
            key={tab.key}
            ref={(element) => {
              if (element) tabRefs.current.set(tab.key, element);
              else tabRefs.current.delete(tab.key);
            }}
            type="button"
            role="tab"
            id={`${prefix}${tab.key}-tab`}
            aria-controls={`${prefix}${tab.key}-panel`}
            aria-selected={tab.key === activeKey}
            tabIndex={tab.key === activeKey ? 0 : -1}
            className={`terminal-tab terminal-tab-${tab.status}`}
            onClick={() => setActive(tab.key)}
          >
            {tabLabel(tab)}
          </button>
        ))}
      </div>
      {tabs.map((tab) => {
        const visible = !hidden && tab.key === activeKey;
        return (
          <div
            key={tab.key}
            role="tabpanel"
            id={`${prefix}${tab.key}-panel`}
            aria-labelledby={`${prefix}${tab.key}-tab`}
            className="terminal-panel"
            hidden={tab.key !== activeKey}
          >
            <div className="terminal-bar">
              <p
                className={isProblem(tab) ? 'terminal-status terminal-status-problem' : 'terminal-status'}
                role={isProblem(tab) ? 'alert' : 'status'}
              >
                {statusLine(tab)}
              </p>
              <button type="button" className="button" onClick={() => close(tab.key)}>
                {{ connecting: 'Cancel', open: 'Disconnect', ended: 'Close tab' }[tab.status]}
              </button>
            </div>
            <TerminalPane tab={tab} visible={visible} attach={attach} />
          </div>
        );
      })}
    </section>
  );
}
