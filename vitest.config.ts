import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['**/*.test.ts', '**/*.test.tsx'],
    exclude: ['**/node_modules/**', '.keyport-demo/**'],
    pool: 'forks',
    setupFiles: ['test/setup.ts'],
    // Bounds on a hang, not on speed: the suite must stay green with every core busy elsewhere
    // (npm run test:load). Tests wait on conditions; speed is measured in bench/.
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // expect.poll waits for the condition; its 1 s default is a deadline a loaded machine misses.
    expect: { poll: { timeout: 20_000 } },
  },
});
