// Whether a test needing a server binary runs: it skips where the binary is
// missing, except under CI=true, where a missing binary fails loudly.

/** Fails loudly under CI=true when a binary a test needs is missing; otherwise lets the test skip. */
export function requireBinary(found: boolean, name: string): boolean {
  if (found) return true;
  if (process.env["CI"] === "true")
    throw new Error(`${name} is required under CI=true but was not found`);
  return false;
}
