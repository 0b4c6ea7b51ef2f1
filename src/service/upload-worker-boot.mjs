// Entry file of an upload worker thread. tsx's module hooks do not reach
// worker threads on Node 20, so this plain-JavaScript entry registers them in
// the thread and then loads the TypeScript worker. In the compiled build
// (dist/, scripts/build.sh) the worker is JavaScript beside this file: no tsx.
import { existsSync } from 'node:fs';

const compiled = new URL('./upload-worker.js', import.meta.url);
if (existsSync(compiled)) await import(compiled.href);
else {
  (await import('tsx/esm/api')).register();
  await import(new URL('./upload-worker.ts', import.meta.url).href);
}
