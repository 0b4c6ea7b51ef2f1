// Writing to a response at the client's pace. A stream that waits for
// 'drain' must also stop waiting when the client goes away, and must take its
// listeners off either way: a long download or SSE stream waits many times,
// and listeners left behind would pile up on the response.
import type { Response } from 'express';

/** Waits for 'drain' unless the client went away first; false when it did. */
export function drained(res: Response): Promise<boolean> {
  if (res.destroyed || res.writableEnded) return Promise.resolve(false);
  return new Promise((resolve) => {
    const settle = (ok: boolean) => {
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(ok);
    };
    const onDrain = () => settle(true);
    const onClose = () => settle(false);
    res.once('drain', onDrain);
    res.once('close', onClose);
  });
}

/** Writes, waiting for the socket to drain; false once the client is gone. */
export async function send(res: Response, chunk: string | Uint8Array): Promise<boolean> {
  if (res.destroyed || res.writableEnded) return false;
  if (res.write(chunk)) return true;
  return drained(res);
}
