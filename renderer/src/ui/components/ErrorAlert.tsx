import type { ReactNode } from 'react';
import type { ContractError } from '../../../../preload/contract';
import { describeError } from '../../services/errors';

interface ErrorAlertProps {
  error: ContractError | null;
  /** A way out that fits the error, such as a "Sign in again" button. */
  action?: ReactNode;
  /** A previous error whose space stays reserved (invisible, silent) while a new attempt runs. */
  held?: ContractError | null;
}

export function ErrorAlert({ error, action, held }: ErrorAlertProps) {
  if (!error && held) {
    return (
      <div className="alert alert-held" aria-hidden="true">
        <p>{describeError(held)}</p>
      </div>
    );
  }
  if (!error) return null;
  return (
    <div className="alert" role="alert">
      <p>{describeError(error)}</p>
      {action}
    </div>
  );
}
