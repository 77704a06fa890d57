// Imported first by every renderer test (which runs in jsdom, see each file's first line): DOM matchers,
// and a clean document after each test (vitest runs without globals, so Testing Library cannot register
// its own cleanup).
import '@testing-library/jest-dom/vitest';
import { cleanup, configure } from '@testing-library/react';
import { afterEach, vi } from 'vitest';

// findBy*/waitFor wait for the screen itself; 1 s (the default) is a guess a loaded machine can miss.
configure({ asyncUtilTimeout: 20_000 });

afterEach(() => {
  cleanup();
  vi.useRealTimers();
});
