// Writes a results file the way the repository keeps it: formatted by the
// project's Prettier settings, so a benchmark run leaves `npm run lint`
// (prettier --check) passing, and a committed result is byte for byte what the
// runner wrote.
import { writeFileSync } from "node:fs";
import { format, resolveConfig } from "prettier";

export async function writeFormatted(path: string, text: string): Promise<void> {
  const options = (await resolveConfig(path)) ?? {};
  writeFileSync(path, await format(text, { ...options, filepath: path }));
}
