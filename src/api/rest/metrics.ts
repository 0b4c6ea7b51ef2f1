// The REST door's side of the process metrics (runtime/metrics.ts): one sample
// per answered request, labelled by the route *template* (never the raw path,
// so label cardinality stays bounded whatever clients send), and the
// database gauges (jobs by state, queue depth) read through the service when
// /metrics is scraped.
import { jobGauges, type ServiceContext } from '../../service/index.js';
import { observeHttp, registerJobSource } from '../../runtime/metrics.js';

export class HttpMetrics {
  observe(method: string, route: string, status: number, seconds: number): void {
    observeHttp(method, route, status, seconds);
  }
}

/** The jobs-by-state and queue-depth gauges come from this service's database. */
export function registerServiceGauges(ctx: Pick<ServiceContext, 'prisma' | 'boss'>): void {
  registerJobSource(() => jobGauges(ctx));
}
