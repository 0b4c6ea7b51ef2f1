// A checkpoint sink on the local file system (the CLI's, and the tests'):
// `<dir>/round_<k>/` per round, `<dir>/state/` for run state, `<dir>/result/`.
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RoundMetrics } from '../metrics.js';
import type { CheckpointSink, RoundRecord, RunResultRecord } from '../sink.js';

/** Writes `<dir>/round_<k>/…` with a temp-dir-and-rename so a round appears whole or not at all. */
export class FileSink implements CheckpointSink {
  constructor(readonly dir: string) {}

  async finishedRounds(): Promise<RoundRecord[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return [];
    }
    const indices = names
      .map((n) => /^round_(\d+)$/.exec(n))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    const rounds: RoundRecord[] = [];
    for (const index of indices) {
      const roundDir = join(this.dir, `round_${index}`);
      const artifacts: Record<string, Uint8Array> = {};
      for (const file of await readdir(roundDir)) {
        if (file === 'metrics.json') continue;
        artifacts[file] = new Uint8Array(await readFile(join(roundDir, file)));
      }
      const metrics = JSON.parse(await readFile(join(roundDir, 'metrics.json'), 'utf8')) as RoundMetrics;
      rounds.push({ index, metrics, artifacts });
    }
    return rounds;
  }

  async getState(key: string): Promise<Uint8Array | null> {
    try {
      return new Uint8Array(await readFile(join(this.dir, 'state', key)));
    } catch {
      return null;
    }
  }

  async putState(key: string, bytes: Uint8Array): Promise<void> {
    await this.writeAtomically(join(this.dir, 'state'), { [key]: bytes }, false);
  }

  async commitRound(round: RoundRecord): Promise<void> {
    const files = { ...round.artifacts, 'metrics.json': new TextEncoder().encode(JSON.stringify(round.metrics, null, 2)) };
    await this.writeAtomically(join(this.dir, `round_${round.index}`), files, true);
  }

  async commitResult(result: RunResultRecord): Promise<void> {
    const files = {
      ...result.artifacts,
      'result.json': new TextEncoder().encode(JSON.stringify({ name: result.name, verdict: result.verdict, ...result.summary }, null, 2)),
    };
    await this.writeAtomically(join(this.dir, 'result'), files, true);
  }

  /** Write files into a sibling temp dir, then rename it into place (whole-directory replace when `replace`). */
  private async writeAtomically(target: string, files: Record<string, Uint8Array>, replace: boolean): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    if (!replace) {
      await mkdir(target, { recursive: true });
      for (const [name, bytes] of Object.entries(files)) {
        const tmp = join(target, `.${name}.tmp`);
        await writeFile(tmp, bytes);
        await rename(tmp, join(target, name));
      }
      return;
    }
    const tmp = `${target}.tmp-${process.pid}`;
    await rm(tmp, { recursive: true, force: true });
    for (const [name, bytes] of Object.entries(files)) {
      const path = join(tmp, name);
      await mkdir(join(path, '..'), { recursive: true });
      await writeFile(path, bytes);
    }
    await rm(target, { recursive: true, force: true });
    await rename(tmp, target);
  }
}
