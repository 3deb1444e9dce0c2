/**
 * The HTTP latency histogram, registered with prom-client's registry but counted here. prom-client's
 * labelled `observe` validates and hashes the label set on every call, even through a child from
 * `labels()` (about a microsecond per request, on the thread that is the order-entry bottleneck);
 * here each series is found once per route and status and an observation is three increments.
 * prom-client still renders it: the registry only needs `name` and `get()`.
 */
type Labels = Record<string, string>;

export class LatencySeries {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly labels: Labels, private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(seconds: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && seconds > bounds[i]!) i++;
    if (i < bounds.length) this.counts[i]! += 1;
    this.sum += seconds;
    this.count += 1;
  }
}

export class LatencyHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly all: LatencySeries[] = [];

  constructor(readonly name: string, readonly help: string, private readonly bounds: readonly number[]) {}

  series(labels: Labels): LatencySeries {
    const series = new LatencySeries(labels, this.bounds);
    this.all.push(series);
    return series;
  }

  /** What prom-client's registry renders: cumulative buckets with `le`, then _sum and _count, per series. */
  get(): { name: string; help: string; type: string; aggregator: string; values: { labels: Record<string, string | number>; value: number; metricName: string }[] } {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    for (const series of this.all) {
      let cumulative = 0;
      this.bounds.forEach((bound, i) => {
        cumulative += series.counts[i]!;
        values.push({ labels: { le: bound, ...series.labels }, value: cumulative, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { le: '+Inf', ...series.labels }, value: series.count, metricName: `${this.name}_bucket` });
      values.push({ labels: series.labels, value: series.sum, metricName: `${this.name}_sum` });
      values.push({ labels: series.labels, value: series.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
