'use strict';
// Prints the .NET benchmark's Postgres results beside the TypeScript SDK's, one line per workload present in both.
// Usage: node compare.js DOTNET_JSON TYPESCRIPT_JSON
// Each file is the --json output of its benchmark: an array of { workload, backend, unit, raw, ours, ratio }.
// Exits 1 when a file cannot be read or when no workload is in both.

const fs = require('node:fs');

function load(file, what) {
  let rows;
  try {
    rows = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    throw new Error(`could not read the ${what} results from ${file}: ${error.message}`);
  }
  if (!Array.isArray(rows)) {
    throw new Error(`${file} does not hold a JSON array of results`);
  }
  for (const row of rows) {
    if (typeof row?.workload !== 'string' || typeof row.unit !== 'string' || typeof row.ours !== 'number') {
      throw new Error(`${file}: each result needs a workload, a unit and a number in "ours": ${JSON.stringify(row)}`);
    }
  }
  // The TypeScript side runs on Postgres only.
  return rows.filter((row) => row.backend === 'Postgres');
}

const number = (value) =>
  typeof value !== 'number' || Number.isNaN(value) ? '-' : value >= 100 ? value.toFixed(0) : value.toFixed(2);

// Times (us, ms, bytes): lower is better; rates (x/s): higher is better.
const higherIsBetter = (unit) => unit.endsWith('/s');

function main(argv) {
  if (argv.length !== 2) {
    console.error('Usage: node compare.js DOTNET_JSON TYPESCRIPT_JSON');
    return 2;
  }
  const ours = load(argv[0], '.NET');
  const theirs = new Map(load(argv[1], 'TypeScript').map((row) => [row.workload, row]));

  const header = ['workload', 'unit', 'ours', 'TS SDK', 'raw (ours)', 'raw (TS)', 'ours/raw', 'TS/raw', 'ours/TS', 'better'];
  const lines = [];
  const notes = [];
  for (const o of ours) {
    const t = theirs.get(o.workload);
    if (!t) {
      notes.push(`"${o.workload}" has no TypeScript counterpart`);
      continue;
    }
    theirs.delete(o.workload);
    if (o.unit !== t.unit) {
      notes.push(`"${o.workload}" is in ${o.unit} for .NET but ${t.unit} for TypeScript: left out`);
      continue;
    }
    const ratio = t.ours > 0 ? o.ours / t.ours : NaN;
    // Which one is better, and by how many times, from the figures themselves (not from the ratios to raw).
    const oursBetter = higherIsBetter(o.unit) ? ratio >= 1 : ratio <= 1;
    const better = Number.isFinite(ratio) && ratio > 0 ? `${oursBetter ? 'ours' : 'TS'} ${Math.max(ratio, 1 / ratio).toFixed(2)}x` : '-';
    lines.push([o.workload, o.unit, number(o.ours), number(t.ours), number(o.raw), number(t.raw), number(o.ratio), number(t.ratio), number(ratio), better]);
  }
  for (const workload of theirs.keys()) {
    notes.push(`"${workload}" is in the TypeScript results only`);
  }

  if (lines.length === 0) {
    console.error('compare.js: no workload is in both result files');
    return 1;
  }
  const widths = header.map((h, c) => Math.max(h.length, ...lines.map((l) => l[c].length)));
  const render = (cells) => cells.map((cell, c) => (c < 2 || c === 9 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ').trimEnd();
  console.log();
  console.log('DBOS for .NET (ours) and @dbos-inc/dbos-sdk (TS SDK), same workloads on the same Postgres');
  console.log(render(header));
  console.log(render(widths.map((w) => '-'.repeat(w))));
  for (const line of lines) {
    console.log(render(line));
  }
  console.log();
  console.log('raw: each side\'s own baseline from its own run (one INSERT committed on its own; commits/s from as many');
  console.log('connections; a raw claim-and-complete queue). x/raw: that side\'s figure over its raw baseline. ours/TS: our');
  console.log('figure over theirs. Times (us): lower is better; rates (/s): higher is better. The two runs are separate and the');
  console.log('machine may be busier in one: the x/raw ratios are the fairer comparison when the raw columns differ.');
  for (const note of notes) {
    console.log(`note: ${note}`);
  }
  return 0;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (error) {
  console.error(`compare.js: ${error.message}`);
  process.exitCode = 1;
}
