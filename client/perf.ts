// Step timings for bench/ (KEYPORT_PERF=1): each timed ceremony keeps the milliseconds of its named
// steps in memory for the benchmark to take (takePerfRecords). Without KEYPORT_PERF it is a no-op.
import { performance } from 'node:perf_hooks';

export interface PerfSteps {
  /** Ends the step called `name` (the time since the previous step, or since the start). */
  step(name: string): void;
  /** Ends the span and keeps it. */
  end(): void;
}

export interface PerfRecord {
  span: string;
  steps: Record<string, number>;
}

const off: PerfSteps = { step: () => {}, end: () => {} };
const records: PerfRecord[] = [];

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
      if (records.length < 10_000) records.push({ span, steps });
    },
  };
}

/** The spans kept since the last call. */
export function takePerfRecords(): PerfRecord[] {
  return records.splice(0);
}
