// CSV cells that are safe to open in a spreadsheet: a text cell that starts with = + - @ (or a tab / carriage
// return) is a formula to Excel, LibreOffice and Google Sheets (CSV formula injection: a run name or a model file
// name from an untrusted workspace could run a command or leak data). Such cells get a leading apostrophe, the
// spreadsheets' own "this is text" mark; numbers stay numbers. Every CSV otfuse writes is built here.

/** A plain decimal number (what String(number) gives): left as it is, even when negative. */
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
const FORMULA_START = /^[=+\-@\t\r]/;

/** One CSV cell: formula starts neutralised, quoted when it holds a comma, a quote or a line break. */
export function csvCell(value: string | number): string {
  let s = String(value);
  if (typeof value !== 'number' && FORMULA_START.test(s) && !NUMBER.test(s)) s = `'${s}`;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** A whole CSV table (header + rows), each cell through csvCell, lines ending in \n. */
export function csvTable(header: string[], rows: (string | number)[][]): string {
  return [header, ...rows].map((r) => r.map(csvCell).join(',')).join('\n') + '\n';
}
