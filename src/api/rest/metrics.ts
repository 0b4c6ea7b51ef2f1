// Prometheus text exposition for the REST door: request counts and a latency
// histogram per (method, route pattern, status), plus gauges read at scrape
// time (jobs per state, queue depth). Route *patterns* are the labels, never
// raw paths, so label cardinality stays bounded whatever clients send.
import { renderCrashMetrics } from '../../runtime/crash-guard.js';
import { JOB_STATES, jobGauges, type ServiceContext } from '../../service/index.js';

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

interface Series {
  labels: string;
  count: number;
  sum: number;
  buckets: number[];
}

const escape = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

export class HttpMetrics {
  private readonly series = new Map<string, Series>();

  observe(method: string, route: string, status: number, seconds: number): void {
    const labels = `method="${escape(method)}",route="${escape(route)}",status="${status}"`;
    let s = this.series.get(labels);
    if (!s) this.series.set(labels, (s = { labels, count: 0, sum: 0, buckets: BUCKETS.map(() => 0) }));
    s.count++;
    s.sum += seconds;
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]!) s.buckets[i]!++;
  }

  render(): string {
    const lines: string[] = [
      '# HELP ticketsmith_http_requests_total HTTP requests answered, by method, route pattern and status.',
      '# TYPE ticketsmith_http_requests_total counter',
    ];
    const all = [...this.series.values()].sort((a, b) => a.labels.localeCompare(b.labels));
    for (const s of all) lines.push(`ticketsmith_http_requests_total{${s.labels}} ${s.count}`);
    lines.push(
      '# HELP ticketsmith_http_request_duration_seconds Time from request to the last byte of the response.',
      '# TYPE ticketsmith_http_request_duration_seconds histogram',
    );
    for (const s of all) {
      BUCKETS.forEach((le, i) => lines.push(`ticketsmith_http_request_duration_seconds_bucket{${s.labels},le="${le}"} ${s.buckets[i]}`));
      lines.push(`ticketsmith_http_request_duration_seconds_bucket{${s.labels},le="+Inf"} ${s.count}`);
      lines.push(`ticketsmith_http_request_duration_seconds_sum{${s.labels}} ${s.sum}`);
      lines.push(`ticketsmith_http_request_duration_seconds_count{${s.labels}} ${s.count}`);
    }
    return lines.join('\n') + '\n' + renderCrashMetrics();
  }
}

/** Gauges from the database; a failed read is reported as such rather than failing the scrape. */
export async function serviceGauges(ctx: ServiceContext): Promise<string> {
  const lines: string[] = [];
  try {
    const g = await jobGauges(ctx);
    lines.push('# HELP ticketsmith_jobs Jobs in the database, by state (all tenants).', '# TYPE ticketsmith_jobs gauge');
    for (const state of JOB_STATES) lines.push(`ticketsmith_jobs{state="${state}"} ${g.jobs[state]}`);
    lines.push('# HELP ticketsmith_queue_depth Dispatches waiting in the job queue.', '# TYPE ticketsmith_queue_depth gauge', `ticketsmith_queue_depth ${g.queueDepth}`);
    lines.push('# HELP ticketsmith_scrape_ok 1 when the gauges above were read from the database.', '# TYPE ticketsmith_scrape_ok gauge', 'ticketsmith_scrape_ok 1');
  } catch {
    lines.push('# HELP ticketsmith_scrape_ok 1 when the gauges above were read from the database.', '# TYPE ticketsmith_scrape_ok gauge', 'ticketsmith_scrape_ok 0');
  }
  return lines.join('\n') + '\n';
}
