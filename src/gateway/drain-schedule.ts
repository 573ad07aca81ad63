// When each socket of a draining node is closed. Closing thousands of sockets
// at once makes them all reconnect at once to the remaining nodes (a
// thundering herd of resumes, each a store read); spreading the closes over
// DRAIN_PERIOD turns that into a steady trickle the cluster absorbs.

/**
 * `count` close times in ms after the start, sorted, spread uniformly over
 * `periodMs` with jitter: the period is cut into `count` equal slots and each
 * close falls at a random point of its own slot, so the closes never bunch up
 * and the last one is at or before `periodMs`. `random` returns [0, 1).
 */
export function spreadCloseTimes(
  count: number,
  periodMs: number,
  random: () => number = Math.random,
): number[] {
  if (count <= 0) return [];
  if (periodMs <= 0) return new Array<number>(count).fill(0);
  const slot = periodMs / count;
  const times = new Array<number>(count);
  for (let i = 0; i < count; i++) times[i] = Math.min(periodMs, (i + random()) * slot);
  return times;
}
