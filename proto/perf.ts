// Step timings for bench/ (KEYPORT_PERF=1), shared by keyport-auth and the client: a span names its
// steps as they end; at its end the span goes to a sink (the server writes a `keyport-perf {json}` line
// to standard error; the client keeps it in memory for the benchmark). Without KEYPORT_PERF, a no-op.
import { performance } from 'node:perf_hooks';

export interface PerfSteps {
  /** Ends the step called `name` (the time since the previous step, or since the start). */
  step(name: string): void;
  /** Ends the span and hands it to the sink. */
  end(): void;
}

export interface PerfRecord {
  span: string;
  steps: Record<string, number>;
}

const off: PerfSteps = { step: () => {}, end: () => {} };

export function perfSteps(span: string, sink: (record: PerfRecord) => void): PerfSteps {
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
      sink({ span, steps });
    },
  };
}
