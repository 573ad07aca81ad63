// Writes a chaos campaign's results table into docs/reliability.md, between
// its markers, with the command and the seed that produced it.
import { readFile, writeFile } from "node:fs/promises";
import { format, resolveConfig } from "prettier";
import { formatTable, type ResultRow } from "./checker.js";

const BEGIN = "<!-- chaos-results:begin -->";
const END = "<!-- chaos-results:end -->";

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

/** Replaces the text between the markers in `file`. */
export async function writeResults(
  file: string,
  rows: readonly ResultRow[],
  info: ReportInfo,
): Promise<void> {
  const text = await readFile(file, "utf8");
  const begin = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  if (begin < 0 || end < begin) throw new Error(`${file} has no ${BEGIN} ... ${END} section`);
  const section = resultsSection(rows, info).join("\n");
  const updated = `${text.slice(0, begin + BEGIN.length)}\n${section}\n${text.slice(end)}`;
  // Formatted as `npm run lint` expects (the table's columns aligned).
  const options = (await resolveConfig(file)) ?? {};
  await writeFile(file, await format(updated, { ...options, filepath: file }), "utf8");
}
