// A TPM quote through the helper (TypeScript → JSON line → keyport-tpm-helper → Esys_Quote → swtpm and
// back; the AK's ESYS handle cached) against its floor: direct Esys_Quote calls timed inside the helper,
// same arguments, same swtpm, same run. Rounds alternate the two so drift hits both alike.
import { fileURLToPath } from 'node:url';
import { openTpm } from '../client/hardware/tpm/helper';
import { startLabTpm } from '../lab/tpm';
import { median, percentile, timeEach } from './stats';

const ROUNDS = Number(process.env.BENCH_TPM_ROUNDS ?? 6);
const QUOTES = Number(process.env.BENCH_TPM_QUOTES ?? 50);
const TARGET_RATIO = 1.2;

export async function benchTpmQuote() {
  const helperPath = fileURLToPath(new URL('../native/tpm-helper/build/keyport-tpm-helper', import.meta.url));
  const lab = await startLabTpm();
  const tpm = await openTpm({ tcti: lab.tcti, helperPath });
  try {
    await tpm.createAttestationKey();
    const nonce = new Uint8Array(32).fill(0x5a);
    // Warm both paths: the AK handle is looked up once, on the first quote.
    await tpm.quote(nonce);
    await tpm.rawQuoteBench(QUOTES);
    const measured: number[] = [];
    const floorMedians: number[] = [];
    const floorP90s: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      measured.push(...(await timeEach(QUOTES, () => tpm.quote(nonce))));
      const floor = await tpm.rawQuoteBench(QUOTES);
      floorMedians.push(floor.medianUs / 1000);
      floorP90s.push(floor.p90Us / 1000);
    }
    const floorMedian = median(floorMedians);
    const ratio = median(measured) / floorMedian;
    const line = {
      bench: 'tpm quote (helper round trip)',
      ratio: Number(ratio.toFixed(2)),
      measured_median_ms: Number(median(measured).toFixed(3)),
      measured_p90_ms: Number(percentile(measured, 90).toFixed(3)),
      floor: 'direct Esys_Quote in the helper',
      floor_median_ms: Number(floorMedian.toFixed(3)),
      floor_p90_ms: Number(median(floorP90s).toFixed(3)),
      samples: measured.length,
      target_ratio: TARGET_RATIO,
      within_target: ratio <= TARGET_RATIO,
    };
    console.log(
      `${line.bench}: ratio = ${line.ratio} (measured ${line.measured_median_ms} ms median, ${line.measured_p90_ms} ms p90; ` +
        `floor "${line.floor}" ${line.floor_median_ms} ms median, ${line.floor_p90_ms} ms p90)`,
    );
    console.log(JSON.stringify(line));
    return line;
  } finally {
    await tpm.close();
    await lab.stop();
  }
}
