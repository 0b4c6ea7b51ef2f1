// Entry file of a conv-engine slice worker. tsx's module hooks do not reach
// worker threads on Node 20, so this plain-JavaScript entry registers them in
// the thread and then loads the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import(new URL('./slice-worker.ts', import.meta.url).href);
