import { useCallback, useEffect, useRef, useState } from 'react';
import { flushSync } from 'react-dom';
import type { ContractError, Result } from '../../../preload/contract';
import { call } from './keyport';

/** How long a wait may last before it shows progress, so fast calls do not flash a spinner. */
export const PROGRESS_DELAY_MS = 300;

/** True once `active` has stayed true for `delayMs`; false again as soon as it turns false. */
export function useDelayedFlag(active: boolean, delayMs = PROGRESS_DELAY_MS): boolean {
  const [elapsed, setElapsed] = useState(false);
  useEffect(() => {
    if (!active) return;
    const timer = setTimeout(() => setElapsed(true), delayMs);
    return () => {
      clearTimeout(timer);
      setElapsed(false);
    };
  }, [active, delayMs]);
  return active && elapsed;
}

export interface Action {
  busy: boolean;
  /** The last call's error; null while a new call runs. */
  error: ContractError | null;
  /** While a new call runs, the previous error: its space is kept, so nothing moves during the wait. */
  heldError: ContractError | null;
  setError(error: ContractError | null): void;
  /** Runs one call (ignored while another runs); the error, if any, lands in `error`. */
  run<T>(work: () => Promise<Result<T>>): Promise<Result<T> | undefined>;
}

/** The state of one user action that calls the backend: busy while it runs, its error after. */
export function useAction(): Action {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ContractError | null>(null);
  const running = useRef(false);
  const run = useCallback(async <T>(work: () => Promise<Result<T>>) => {
    if (running.current) return undefined;
    running.current = true;
    setBusy(true);
    const result = await call(work);
    running.current = false;
    // Committed at once, so the caller can move focus to a control that was disabled while busy.
    flushSync(() => {
      setBusy(false);
      setError(result.ok ? null : result.error);
    });
    return result;
  }, []);
  return { busy, error: busy ? null : error, heldError: busy ? error : null, setError, run };
}

/** Date.now(), refreshed every `intervalMs`. */
export function useNow(intervalMs: number): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), intervalMs);
    return () => clearInterval(timer);
  }, [intervalMs]);
  return now;
}
