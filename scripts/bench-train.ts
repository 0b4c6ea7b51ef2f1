// Training-speed benchmark (issue #3): examples/s of our training loop for
// LeNet-300-100 and Conv-2 on every TF.js backend available, next to PyTorch
// in the same run. A thin wrapper: the same as `ticketsmith bench`, whose
// planner, measuring children and reports live in src/bench/.
//
//   npm run bench:train -- [--quick] [--write] [--backends wasm,cpu] [--help]
import { benchCommand, benchUsage } from '../src/cli/bench.js';
import { UsageError } from '../src/cli/flags.js';

const argv = process.argv.slice(2);
if (argv.includes('--help') || argv.includes('-h')) {
  process.stdout.write(benchUsage());
  process.exit(0);
}
try {
  process.exitCode = await benchCommand(argv, 'npm run bench:train');
} catch (err) {
  process.stderr.write(`error: ${(err as Error).message}\n`);
  process.exitCode = err instanceof UsageError ? 2 : 1;
}
