import { useId, useLayoutEffect, useRef, useState } from 'react';
import type { KeyboardEvent, ReactNode, RefObject } from 'react';
import { createPortal } from 'react-dom';
import { canTakeFocus, focusableIn, pushLayer, removeLayer, topLayer } from './focus';
import './components.css';

interface DialogProps {
  title: string;
  /** Escape, or the dialog's own cancel button. */
  onCancel(): void;
  children: ReactNode;
  /** Focused on open; by default the first input, else the first button. */
  initialFocus?: RefObject<HTMLElement | null>;
  /** True while the dialog waits for the backend. */
  busy?: boolean;
}

/**
 * A modal dialog (WAI-ARIA APG "Dialog (Modal)"): named by its heading, focus moves in on open, Tab stays
 * inside, Escape cancels, and focus returns where it was on close. The rest of the page is inert.
 */
export function Dialog({ title, onCancel, children, initialFocus, busy = false }: DialogProps) {
  const titleId = useId();
  const dialogRef = useRef<HTMLDivElement>(null);
  const [layer] = useState(() => {
    const element = document.createElement('div');
    element.className = 'dialog-layer';
    return element;
  });
  const onCancelRef = useRef(onCancel);
  useLayoutEffect(() => {
    onCancelRef.current = onCancel;
  });

  useLayoutEffect(() => {
    const previous = document.activeElement;
    document.body.append(layer);
    pushLayer(layer);
    const dialog = dialogRef.current;
    if (dialog) {
      const firstInput = dialog.querySelector<HTMLElement>('input:not([disabled]), textarea:not([disabled])');
      (initialFocus?.current ?? firstInput ?? focusableIn(dialog)[0] ?? dialog).focus();
    }
    return () => {
      removeLayer(layer);
      layer.remove();
      const below = topLayer();
      if (below) {
        (focusableIn(below)[0] ?? below).focus();
      } else if (canTakeFocus(previous)) {
        previous.focus();
      } else {
        // What had focus is gone (a list row removed, a button disabled): the main region takes it, so
        // the next Tab starts from the content instead of the top of the document.
        document.querySelector<HTMLElement>('main')?.focus({ preventScroll: true });
      }
    };
    // Runs once per dialog: initialFocus is read on open only.
  }, [layer]);

  function onKeyDown(event: KeyboardEvent<HTMLDivElement>) {
    if (event.key === 'Escape') {
      event.preventDefault();
      event.stopPropagation();
      onCancelRef.current();
      return;
    }
    if (event.key !== 'Tab' || !dialogRef.current) return;
    const items = focusableIn(dialogRef.current);
    const first = items[0];
    const last = items.at(-1);
    if (!first || !last) {
      event.preventDefault();
      return;
    }
    const active = document.activeElement;
    const inside = items.includes(active as HTMLElement);
    if (event.shiftKey && (active === first || !inside)) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (active === last || !inside)) {
      event.preventDefault();
      first.focus();
    }
  }

  return createPortal(
    <div className="dialog-backdrop">
      <div
        ref={dialogRef}
        className="dialog"
        role="dialog"
        aria-modal="true"
        aria-labelledby={titleId}
        aria-busy={busy || undefined}
        tabIndex={-1}
        onKeyDown={onKeyDown}
      >
        <h2 id={titleId} className="dialog-title">
          {title}
        </h2>
        {children}
      </div>
    </div>,
    layer,
  );
}
