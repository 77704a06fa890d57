// The renderer's one way to the app: window.keyport, as the preload (Electron) or the browser bridge
// exposes it. Only types come from the contract; every value crosses the IPC boundary as a Result.
import type { ContractError, KeyportApi, Result } from '../../../preload/contract';

declare global {
  interface Window {
    keyport: KeyportApi;
  }
}

/** window.keyport, or undefined when the page runs without a host (opened as a plain file). */
export function keyportFromWindow(): KeyportApi | undefined {
  return (window as Partial<Window>).keyport;
}

const lostContact: ContractError = {
  code: 'INTERNAL',
  message: 'Keyport Connect lost contact with its backend. Restart the app.',
  details: {},
};

/**
 * Runs one contract call and always settles with a Result: a transport that throws (a closed window, a
 * dropped bridge) becomes an error value like any other, so callers handle one shape.
 */
export async function call<T>(work: () => Promise<Result<T>>): Promise<Result<T>> {
  try {
    return await work();
  } catch {
    return { ok: false, error: lostContact };
  }
}
