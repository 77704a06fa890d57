import type { ReactNode } from 'react';
import type { ContractError } from '../../../../preload/contract';
import { describeError } from '../../services/errors';

interface ErrorAlertProps {
  error: ContractError | null;
  /** A way out that fits the error, such as a "Sign in again" button. */
  action?: ReactNode;
}

export function ErrorAlert({ error, action }: ErrorAlertProps) {
  if (!error) return null;
  return (
    <div className="alert" role="alert">
      <p>{describeError(error)}</p>
      {action}
    </div>
  );
}
