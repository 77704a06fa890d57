import { createContext, useContext } from 'react';
import type { KeyportApi } from '../../../preload/contract';

/** The contract's API for the components below; tests pass a fake of the IPC boundary here. */
export const KeyportContext = createContext<KeyportApi | null>(null);

export function useKeyport(): KeyportApi {
  const api = useContext(KeyportContext);
  if (!api) throw new Error('useKeyport() needs a <KeyportContext> above it.');
  return api;
}
