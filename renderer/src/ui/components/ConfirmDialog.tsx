import { useRef } from 'react';
import type { ReactNode } from 'react';
import { Dialog } from './Dialog';

interface ConfirmDialogProps {
  title: string;
  confirmLabel: string;
  onConfirm(): void;
  onCancel(): void;
  children?: ReactNode;
}

/** Asks before a destructive action. Cancel has focus first, so Enter alone never destroys anything. */
export function ConfirmDialog({ title, confirmLabel, onConfirm, onCancel, children }: ConfirmDialogProps) {
  const cancelRef = useRef<HTMLButtonElement>(null);
  return (
    <Dialog title={title} onCancel={onCancel} initialFocus={cancelRef}>
      {children}
      <div className="dialog-actions">
        <button type="button" className="button button-danger" onClick={onConfirm}>
          {confirmLabel}
        </button>
        <button type="button" className="button" ref={cancelRef} onClick={onCancel}>
          Cancel
        </button>
      </div>
    </Dialog>
  );
}
