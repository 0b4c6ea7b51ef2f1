# Ticketsmith on CPU (WASM/SIMD training backend), Node 20.
#   docker build -t ticketsmith .
#   docker run -p 8080:8080 -p 50051:50051 ticketsmith             # embedded PostgreSQL in /app/.data
#   docker run -e DATABASE_URL=postgresql://... ticketsmith          # an external one
# See docker-compose.yml for PostgreSQL + API + two workers.
FROM node:20-bookworm-slim

WORKDIR /app
# MALLOC_ARENA_MAX: two glibc arenas instead of up to 8 a core keep a job's
# trial threads from holding freed buffers (src/bench/plan.ts).
ENV NODE_ENV=production \
    MALLOC_ARENA_MAX=2 \
    TICKETSMITH_DATA_DIR=/app/.data \
    PRISMA_HIDE_UPDATE_MESSAGE=1 \
    CHECKPOINT_DISABLE=1

# Dependencies first, so source edits do not reinstall them. Dev dependencies
# too (NODE_ENV=production would drop them): the Prisma CLI generates the
# client below.
COPY package.json package-lock.json ./
RUN npm ci --include=dev --no-audit --no-fund

COPY . .
# The compiled build (dist/, scripts/build.sh) is what runs: no TypeScript
# compiler at start, and the CLI's client verbs start without loading TF.js.
RUN bash scripts/prisma-generate.sh \
 && npm run build \
 && mkdir -p /app/.data/blobs \
 && chown -R node:node /app/.data

# Not root: the embedded PostgreSQL refuses to run as root, and nothing here needs it.
USER node
VOLUME ["/app/.data"]
EXPOSE 8080 50051
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s \
  CMD node -e "fetch('http://127.0.0.1:8080/readyz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
# node itself as PID 1, so SIGTERM reaches the graceful shutdown (npx would sit in between).
CMD ["node", "dist/cli/main.js", "serve", "--host", "0.0.0.0"]
