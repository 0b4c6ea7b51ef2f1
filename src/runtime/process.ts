// Whether a process exists, for the places that find a pid on disk (the
// embedded Postgres's postmaster.pid, the blob store's temp-file names).

/** True while `pid` names a live process (EPERM: it exists, under another user). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
