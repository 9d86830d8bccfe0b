/**
 * The slice latency histogram's bins (queued → done), in milliseconds: 1-2-5 steps from 10 ms to 2,000 s, then
 * 1, 2, 5 and 10 hours, a day and two: a real-time run's latencies (seconds) and a virtual-time run's (a 1,000-STF
 * run queues slices for many virtual hours) both spread over several bins. Bin `i` holds latencies in
 * [EDGES[i], EDGES[i + 1]); the last bin is open-ended.
 */
export const LATENCY_EDGES_MS: readonly number[] = [
  0, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000,
  2_000_000, 3_600_000, 7_200_000, 18_000_000, 36_000_000, 86_400_000, 172_800_000,
];

/** The bin a latency falls in (a negative one, from clocks out of step, counts as zero). */
export function latencyBin(ms: number): number {
  let i = LATENCY_EDGES_MS.length - 1;
  while (i > 0 && ms < LATENCY_EDGES_MS[i]!) i--;
  return i;
}
