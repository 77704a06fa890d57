// The client's step timings (proto/perf.ts): kept in memory for the benchmark to take.
import { perfSteps as steps } from '../proto/perf';
import type { PerfRecord, PerfSteps } from '../proto/perf';

export type { PerfRecord, PerfSteps };

const records: PerfRecord[] = [];

export function perfSteps(span: string): PerfSteps {
  return steps(span, (record) => {
    if (records.length < 10_000) records.push(record);
  });
}

/** The spans kept since the last call. */
export function takePerfRecords(): PerfRecord[] {
  return records.splice(0);
}
