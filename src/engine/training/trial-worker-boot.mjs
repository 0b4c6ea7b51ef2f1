// Entry file of a trial worker thread. tsx's module hooks do not reach worker
// threads on Node 20, so this plain-JavaScript entry registers them in the
// thread and then loads the TypeScript worker.
import { existsSync } from 'node:fs';

const compiled = new URL('./trial-worker.js', import.meta.url);
if (existsSync(compiled)) await import(compiled.href);
else {
  (await import('tsx/esm/api')).register();
  await import(new URL('./trial-worker.ts', import.meta.url).href);
}
