// Writes a chaos campaign's results table for one broker into
// docs/reliability.md, between that broker's markers, with the command and
// the seed that produced it.
import { readFile, writeFile } from "node:fs/promises";
import { format, resolveConfig } from "prettier";
import { formatTable, type ResultRow } from "./checker.js";

/** The markers around one broker's table. */
const begin = (key: string) => `<!-- chaos-results:${key}:begin -->`;
const end = (key: string) => `<!-- chaos-results:${key}:end -->`;

export interface ReportInfo {
  readonly command: string;
  readonly seed: number;
  readonly secondsPerNemesis: number;
}

export function resultsSection(rows: readonly ResultRow[], info: ReportInfo): string[] {
  const passed = rows.every((r) => r.result.ok);
  return [
    `Run on ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC with \`${info.command}\` ` +
      `(${info.secondsPerNemesis} s of faults per nemesis, seed ${info.seed}): ` +
      (passed ? "every nemesis passed." : "**some nemeses failed**."),
    "",
    ...formatTable(rows),
  ];
}

/** Replaces the text between the markers named `key` in `file`. */
export async function writeResults(
  file: string,
  key: string,
  rows: readonly ResultRow[],
  info: ReportInfo,
): Promise<void> {
  const text = await readFile(file, "utf8");
  const from = text.indexOf(begin(key));
  const to = text.indexOf(end(key));
  if (from < 0 || to < from) throw new Error(`${file} has no ${begin(key)} ... ${end(key)}`);
  const section = resultsSection(rows, info).join("\n");
  const updated = `${text.slice(0, from + begin(key).length)}\n${section}\n${text.slice(to)}`;
  // Formatted as `npm run lint` expects (the table's columns aligned).
  const options = (await resolveConfig(file)) ?? {};
  await writeFile(file, await format(updated, { ...options, filepath: file }), "utf8");
}
