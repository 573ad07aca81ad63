// `--promoted-prof`: where the runner asks Roomcast (through
// promoted-preload.ts, which it loads with --import) to write the profile of
// its promoted allocations. Children inherit the variable.
export const PROMOTED_ENV = "ROOMCAST_BENCH_PROMOTED_DIR";
