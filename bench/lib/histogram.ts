// Latency histogram with logarithmic buckets (2 % wide): constant memory, cheap to
// record on the hot receive path, and mergeable across worker threads by adding
// the bucket arrays.
const GROWTH = 1.02;
const LOG_GROWTH = Math.log(GROWTH);
/** 1 µs .. ~10^9 µs (over 16 minutes) fits in this many buckets. */
const BUCKETS = Math.ceil(Math.log(1e9) / LOG_GROWTH) + 1;

export class Histogram {
  readonly counts: Float64Array;
  total = 0;

  constructor(counts?: ArrayLike<number>) {
    this.counts = new Float64Array(BUCKETS);
    if (counts !== undefined) {
      for (let i = 0; i < BUCKETS && i < counts.length; i++) {
        const c = counts[i] ?? 0;
        this.counts[i] = c;
        this.total += c;
      }
    }
  }

  /** Records one latency in microseconds. */
  record(micros: number): void {
    const index = micros <= 1 ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(micros) / LOG_GROWTH));
    this.counts[index] = (this.counts[index] ?? 0) + 1;
    this.total++;
  }

  add(other: Histogram): void {
    for (let i = 0; i < BUCKETS; i++)
      this.counts[i] = (this.counts[i] ?? 0) + (other.counts[i] ?? 0);
    this.total += other.total;
  }

  reset(): void {
    this.counts.fill(0);
    this.total = 0;
  }

  /** Upper bound of the bucket holding quantile q (0..1), in microseconds; NaN when empty. */
  quantile(q: number): number {
    if (this.total === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i] ?? 0;
      if (seen >= rank) return Math.pow(GROWTH, i);
    }
    return Math.pow(GROWTH, BUCKETS - 1);
  }
}
