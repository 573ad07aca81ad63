// A versioned schema step. Adapters keep their migrations as arrays of these in
// TypeScript (tsc does not copy .sql files) and record applied versions in a
// `schema_migrations` table.
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}
