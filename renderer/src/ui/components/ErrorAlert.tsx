import { useContext } from 'react';
import type { ReactNode } from 'react';
import type { ContractError } from '../../../../preload/contract';
import { OpenEnrollmentContext } from '../../services/deviceTrust';
import { describeError } from '../../services/errors';

interface ErrorAlertProps {
  error: ContractError | null;
  /** A way out that fits the error, such as a "Sign in again" button. */
  action?: ReactNode;
  /** A previous error whose space stays reserved (invisible, silent) while a new attempt runs. */
  held?: ContractError | null;
  /** The sentence for the error, when the screen knows better than describeError. */
  describe?: (error: ContractError) => string;
}

export function ErrorAlert({ error, action, held, describe = describeError }: ErrorAlertProps) {
  const openEnrollment = useContext(OpenEnrollmentContext);
  if (!error && held) {
    return (
      <div className="alert alert-held" aria-hidden="true">
        <p>{describe(held)}</p>
      </div>
    );
  }
  if (!error) return null;
  // Anywhere in the app, a refusal for want of a trusted device offers to enroll this one.
  const enroll =
    !action && error.code === 'DEVICE_TRUST_REQUIRED' && openEnrollment ? (
      <button type="button" className="button" onClick={openEnrollment}>
        Enroll this device
      </button>
    ) : null;
  return (
    <div className="alert" role="alert">
      <p>{describe(error)}</p>
      {action ?? enroll}
    </div>
  );
}
