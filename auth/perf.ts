// Step timings for bench/ (KEYPORT_PERF=1): each timed call writes one `keyport-perf {json}` line to
// standard error with the milliseconds of its named steps. Without KEYPORT_PERF it is a no-op.
import { performance } from 'node:perf_hooks';

export interface PerfSteps {
  /** Ends the step called `name` (the time since the previous step, or since the start). */
  step(name: string): void;
  /** Ends the span and reports it. */
  end(): void;
}

const off: PerfSteps = { step: () => {}, end: () => {} };

export function perfSteps(span: string): PerfSteps {
  if (process.env['KEYPORT_PERF'] !== '1') return off;
  const start = performance.now();
  let last = start;
  const steps: Record<string, number> = {};
  return {
    step(name) {
      const now = performance.now();
      steps[name] = (steps[name] ?? 0) + (now - last);
      last = now;
    },
    end() {
      steps['total'] = performance.now() - start;
      process.stderr.write(`keyport-perf ${JSON.stringify({ span, steps })}\n`);
    },
  };
}
