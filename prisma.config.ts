// Prisma 7 CLI configuration. Only `prisma migrate deploy` (where the schema
// engine can be downloaded) needs the URL; the service itself applies the same
// migrations with src/store/migrate.ts and never runs the CLI at runtime.
import { defineConfig } from 'prisma/config';

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  // Left empty when unset so `prisma generate` works without a database.
  datasource: { url: process.env.DATABASE_URL ?? '' },
});
