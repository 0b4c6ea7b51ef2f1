// The layer rules of docs/architecture.md, checked by dependency-cruiser on
// every `npm test` (`npm run lint:deps`). One direction, top to bottom:
//
//   doors: api/ (rest, grpc), web/, cli/, client/
//   bench/          (the CLI's benchmark planner and reports)
//   service/        use cases
//   queue/          pg-boss, the worker
//   store/, engine/ (store: every query and blob; engine: one compression run)
//   runtime/        backend, config, logging, processes, outbound guard
//
// A rule here names what a layer must not import; there are no exceptions:
// a violation is fixed in the code, not listed here.
const layer = (name) => `^src/${name}/`;
const any = (...names) => `^src/(${names.join('|')})/`;

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'engine-stays-pure',
      comment: 'The engine runs one compression from a spec and a sink; it knows no SQL, queue, use case, door or benchmark.',
      severity: 'error',
      from: { path: layer('engine') },
      to: { path: any('store', 'queue', 'service', 'api', 'cli', 'web', 'client', 'bench') },
    },
    {
      name: 'runtime-is-the-floor',
      comment: 'runtime/ is what every layer stands on; it imports nothing above it.',
      severity: 'error',
      from: { path: layer('runtime') },
      to: { path: any('engine', 'store', 'queue', 'service', 'api', 'cli', 'web', 'client', 'bench') },
    },
    {
      name: 'store-below-queue',
      comment: 'store/ owns queries and blobs; the queue, use cases and doors call it, never the other way.',
      severity: 'error',
      from: { path: layer('store') },
      to: { path: any('queue', 'service', 'api', 'cli', 'web', 'client', 'bench') },
    },
    {
      name: 'queue-below-service',
      comment: 'queue/ hands jobs to workers; the use cases call it, never the other way.',
      severity: 'error',
      from: { path: layer('queue') },
      to: { path: any('service', 'api', 'cli', 'web', 'client', 'bench') },
    },
    {
      name: 'service-knows-no-door',
      comment: 'REST, gRPC, the dashboard and the CLI are doors onto service/; the use cases know none of them.',
      severity: 'error',
      from: { path: layer('service') },
      to: { path: any('api', 'cli', 'web', 'client', 'bench') },
    },
    {
      name: 'doors-go-through-service',
      comment: 'A door parses, calls service/ and maps the answer; it never reaches the database or the queue itself.',
      severity: 'error',
      from: { path: any('api', 'cli', 'web', 'client') },
      to: { path: any('store', 'queue', 'generated') },
    },
    {
      name: 'bench-measures-the-engine',
      comment: 'bench/ plans and reports training benchmarks on the engine and runtime; it holds no service state.',
      severity: 'error',
      from: { path: layer('bench') },
      to: { path: any('store', 'queue', 'service', 'api', 'cli', 'web', 'client') },
    },
    {
      name: 'src-stands-alone',
      comment: 'Nothing in src/ imports the tests or the scripts: scripts are thin wrappers around src/, not the other way.',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(test|scripts)/' },
    },
    {
      name: 'no-circular',
      comment: 'A cycle means two modules are one; untangle them (a third module, or an interface the lower one owns).',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'An import that does not resolve is a typo or a missing package.',
      severity: 'error',
      from: { path: '^src/' },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    // Generated code (the Prisma client) is treated like a package: imports into it are checked, its insides are not.
    doNotFollow: { path: ['node_modules', '^src/generated/'] },
    // Type-only imports are dependencies too: they tie a layer to another's shapes.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
};
