// Small statistics for benchmarks: medians and percentiles over repeated runs.
export function percentile(samples: readonly number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

export const median = (samples: readonly number[]) => percentile(samples, 50);

export async function timeEach(count: number, run: (i: number) => Promise<unknown>): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    await run(i);
    samples.push(performance.now() - start);
  }
  return samples;
}

export function report<Extra extends Record<string, unknown>>(
  name: string,
  measured: number[],
  floorName: string,
  floor: number[],
  extra: Extra = {} as Extra,
) {
  const ratio = median(measured) / median(floor);
  const line = {
    bench: name,
    ratio: Number(ratio.toFixed(2)),
    measured_median_ms: Number(median(measured).toFixed(3)),
    measured_p90_ms: Number(percentile(measured, 90).toFixed(3)),
    floor: floorName,
    floor_median_ms: Number(median(floor).toFixed(3)),
    samples: measured.length,
    ...extra,
  };
  console.log(
    `${name}: ratio = ${line.ratio} (measured ${line.measured_median_ms} ms median, floor "${floorName}" ${line.floor_median_ms} ms median)`,
  );
  console.log(JSON.stringify(line));
  return line;
}
