// A small line-chart renderer to SVG for the benchmark's plots: a grid of
// panels, each with one y axis from zero, an x axis (linear or log10), and
// series of median points with min–max whiskers. Hand-rolled because what the
// report needs is ~150 lines and no dependency, no browser and no fonts to
// install; the output is plain SVG that GitHub and any browser show as is.
export interface PlotPoint {
  x: number;
  median: number;
  min: number;
  max: number;
}

export interface PlotSeries {
  name: string;
  points: PlotPoint[];
}

export interface Panel {
  title: string;
  xLabel: string;
  yLabel: string;
  xLog: boolean;
  series: PlotSeries[];
}

const W = 320;
const H = 230;
const M = { left: 52, right: 12, top: 28, bottom: 44 };
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

const esc = (s: string): string =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function fmt(v: number): string {
  if (v >= 1000) return `${Number((v / 1000).toPrecision(3))}k`;
  return String(Number(v.toPrecision(3)));
}

/** About five round steps from zero to at least `max`. */
function yTicks(max: number): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = 0; v <= max + step * 0.999; v += step) out.push(Number(v.toPrecision(6)));
  return out;
}

function panel(p: Panel, ox: number, oy: number): string {
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const pts = p.series.flatMap((s) => s.points).filter((q) => Number.isFinite(q.median));
  const xs = [...new Set(pts.map((q) => q.x))].sort((a, b) => a - b);
  const tx = (x: number): number => (p.xLog ? Math.log10(x) : x);
  const x0 = tx(xs[0] ?? 1);
  const x1 = tx(xs[xs.length - 1] ?? 1);
  const span = x1 > x0 ? x1 - x0 : 1;
  const sx = (x: number): number =>
    ox + M.left + (xs.length <= 1 ? pw / 2 : ((tx(x) - x0) / span) * pw);
  const ticks = yTicks(Math.max(0, ...pts.map((q) => (Number.isFinite(q.max) ? q.max : q.median))));
  const top = ticks[ticks.length - 1] ?? 1;
  const sy = (y: number): number => oy + M.top + ph - (y / top) * ph;
  const out: string[] = [];
  out.push(
    `<text x="${ox + W / 2}" y="${oy + 16}" text-anchor="middle" font-weight="bold">${esc(p.title)}</text>`,
  );
  for (const t of ticks) {
    out.push(
      `<line x1="${ox + M.left}" x2="${ox + M.left + pw}" y1="${sy(t)}" y2="${sy(t)}" stroke="#e5e5e5"/>`,
      `<text x="${ox + M.left - 4}" y="${sy(t) + 4}" text-anchor="end">${fmt(t)}</text>`,
    );
  }
  for (const x of xs) {
    out.push(
      `<line x1="${sx(x)}" x2="${sx(x)}" y1="${oy + M.top + ph}" y2="${oy + M.top + ph + 4}" stroke="#333"/>`,
      `<text x="${sx(x)}" y="${oy + M.top + ph + 16}" text-anchor="middle">${fmt(x)}</text>`,
    );
  }
  out.push(
    `<rect x="${ox + M.left}" y="${oy + M.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`,
    `<text x="${ox + M.left + pw / 2}" y="${oy + H - 8}" text-anchor="middle">${esc(p.xLabel)}</text>`,
    `<text transform="translate(${ox + 12},${oy + M.top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(p.yLabel)}</text>`,
  );
  p.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length] ?? "#000";
    const live = s.points.filter((q) => Number.isFinite(q.median)).sort((a, b) => a.x - b.x);
    if (live.length === 0) return;
    const path = live.map((q, j) => `${j === 0 ? "M" : "L"}${sx(q.x)},${sy(q.median)}`).join(" ");
    out.push(`<path d="${path}" fill="none" stroke="${color}" stroke-width="2"/>`);
    for (const q of live) {
      if (Number.isFinite(q.min) && Number.isFinite(q.max) && q.max > q.min) {
        out.push(
          `<line x1="${sx(q.x)}" x2="${sx(q.x)}" y1="${sy(q.min)}" y2="${sy(q.max)}" stroke="${color}"/>`,
        );
      }
      out.push(`<circle cx="${sx(q.x)}" cy="${sy(q.median)}" r="3" fill="${color}"/>`);
    }
    if (p.series.length > 1) {
      const ly = oy + M.top + 12 + i * 14;
      out.push(
        `<line x1="${ox + M.left + 8}" x2="${ox + M.left + 24}" y1="${ly - 4}" y2="${ly - 4}" stroke="${color}" stroke-width="2"/>`,
        `<text x="${ox + M.left + 28}" y="${ly}">${esc(s.name)}</text>`,
      );
    }
  });
  return out.join("\n");
}

/** Panels in a grid of `columns`, with a caption line under them. */
export function renderSvg(panels: Panel[], columns: number, caption: string): string {
  const rows = Math.ceil(panels.length / columns);
  const width = W * columns;
  const height = H * rows + 24;
  const body = panels.map((p, i) => panel(p, (i % columns) * W, Math.floor(i / columns) * H));
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    ...body,
    `<text x="8" y="${height - 8}" fill="#555">${esc(caption)}</text>`,
    "</svg>",
    "",
  ].join("\n");
}
