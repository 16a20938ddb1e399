'use strict';
// The Postgres workloads of bench/Dbos.Benchmarks, written again for the TypeScript SDK (@dbos-inc/dbos-sdk 5.3.0) with
// the same counts, rounds, workload names and units, so that run.sh can print the two side by side:
//   Sequential   one step: (median 10-step workflow - median empty workflow) / 10 within each round; empty workflow
//                median and p99; raw: one INSERT committed on its own
//   Concurrent   10-step workflows with 1, 8 and 32 callers at once, in steps/s; raw: commits/s from as many connections
//   Queue        1-step workflows enqueued by 16 callers and run in this process, end to end; raw: a queue table with
//                inserts, claims in batches with FOR UPDATE SKIP LOCKED, and completions
//   QueueOneByOne  1-step workflows enqueued one at a time on a queue with the SDK's defaults, each start awaited
//                before the next, then every result; raw: as many one-row commits one after the other
// Baseline and SDK are interleaved round by round and medians taken, because the machines this runs on are shared.
//
// Usage: node bench.js [--smoke] [--json FILE] [--postgres-url URL] [--pool-size N]
// The Postgres URL is the server (default DBOS_TEST_POSTGRES_URL, else postgresql://dbos:dbos@127.0.0.1:5432); a
// scratch database is created on it for the run and dropped afterwards, also when the run fails or is interrupted.

const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { performance } = require('node:perf_hooks');

const SDK_LABEL = 'typescript-5.3.0';
const EXPECTED_SDK_VERSION = '5.3.0';

const nodeMajor = Number(process.versions.node.split('.')[0]);
if (nodeMajor < 20) {
  console.error(`Node.js ${process.versions.node} is too old: @dbos-inc/dbos-sdk ${EXPECTED_SDK_VERSION} needs Node.js 20 or newer.`);
  process.exit(2);
}

let DBOS;
let pg;
let sdkVersion;
try {
  ({ DBOS } = require('@dbos-inc/dbos-sdk'));
  // The package's exports hide its package.json: find it beside the entry point.
  let dir = path.dirname(require.resolve('@dbos-inc/dbos-sdk'));
  while (!fs.existsSync(path.join(dir, 'package.json')) || JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).name !== '@dbos-inc/dbos-sdk') {
    if (path.dirname(dir) === dir) {
      throw new Error('package.json of @dbos-inc/dbos-sdk not found');
    }
    dir = path.dirname(dir);
  }
  sdkVersion = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version;
  // The very pg package the SDK itself uses, wherever npm put it.
  pg = require(require.resolve('pg', { paths: [require.resolve('@dbos-inc/dbos-sdk')] }));
} catch (error) {
  console.error(`Could not load @dbos-inc/dbos-sdk (${error.message}).`);
  console.error(`Install it first: run bench/peer-ts/run.sh, or npm install --no-audit --no-fund in bench/peer-ts.`);
  process.exit(2);
}

if (sdkVersion !== EXPECTED_SDK_VERSION) {
  console.error(`Found @dbos-inc/dbos-sdk ${sdkVersion}, but this benchmark is pinned to ${EXPECTED_SDK_VERSION}: run npm install in bench/peer-ts.`);
  process.exit(2);
}

// ---------------------------------------------------------------------------------------------------------------------
// Command line

function usage() {
  return [
    'Usage: node bench.js [--smoke] [--json FILE] [--postgres-url URL] [--pool-size N]',
    '  --smoke           tiny counts: checks that everything runs, the figures mean nothing',
    '  --json FILE       also write the results as a JSON array to FILE',
    '  --postgres-url    the Postgres server (default: DBOS_TEST_POSTGRES_URL, else postgresql://dbos:dbos@127.0.0.1:5432)',
    '  --pool-size N     systemDatabasePoolSize for the SDK (default 32, the pool size the .NET benchmark gives DBOS)',
  ].join('\n');
}

function parseArgs(argv) {
  const options = { smoke: false, json: undefined, postgresUrl: undefined, poolSize: undefined };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) {
        throw new Error(`${arg} needs a value`);
      }
      return argv[++i];
    };
    if (arg === '--smoke') {
      options.smoke = true;
    } else if (arg === '--json') {
      options.json = value();
    } else if (arg === '--postgres-url') {
      options.postgresUrl = value();
    } else if (arg === '--pool-size') {
      options.poolSize = Number(value());
      if (!Number.isInteger(options.poolSize) || options.poolSize < 1) {
        throw new Error('--pool-size must be a positive integer');
      }
    } else if (arg === '--help' || arg === '-h') {
      console.log(usage());
      process.exit(0);
    } else {
      throw new Error(`unknown argument ${arg}`);
    }
  }
  return options;
}

let options;
try {
  options = parseArgs(process.argv.slice(2));
} catch (error) {
  console.error(`${error.message}\n${usage()}`);
  process.exit(2);
}

const smoke = options.smoke;
const serverUrl = options.postgresUrl ?? process.env.DBOS_TEST_POSTGRES_URL ?? 'postgresql://dbos:dbos@127.0.0.1:5432';
const poolSize = options.poolSize ?? 32;
// The same figures as bench/Dbos.Benchmarks/Workloads.cs.
const rounds = smoke ? 2 : 7;
const levels = [1, 8, 32];
const queueWriters = 16;
const settings = {
  sequentialWarmup: smoke ? 3 : 200,
  rawPerRound: smoke ? 20 : 1000,
  workflowsPerRound: smoke ? 5 : 150,
  concurrentWarmup: smoke ? 3 : 100,
  concurrentRounds: Math.min(rounds, smoke ? 1 : 3),
  workflowsAtOnce: (n) => (smoke ? n * 2 : Math.max(60, n * 12)),
  queueRounds: Math.min(rounds, 3),
  queueCount: smoke ? 48 : 3008,
  rawQueueBatch: 500,
  oneByOneWarmup: smoke ? 5 : 100,
  oneByOneCount: smoke ? 40 : 1000,
};

// ---------------------------------------------------------------------------------------------------------------------
// Small helpers

const nowMs = () => performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const progress = (line) => process.stderr.write(`${line}\n`);

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) {
    return NaN;
  }
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

async function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs operation(i) count times in a row; returns each call's duration in microseconds. */
async function timeEach(count, operation) {
  const samples = new Array(count);
  for (let i = 0; i < count; i++) {
    const start = nowMs();
    await operation(i);
    samples[i] = (nowMs() - start) * 1000;
  }
  return samples;
}

/** `callers` loops at once, caller w running operation(i) for i = w, w + callers, ... below count; returns seconds. */
async function spread(callers, count, operation) {
  const start = nowMs();
  await Promise.all(
    Array.from({ length: callers }, async (_, w) => {
      for (let i = w; i < count; i += callers) {
        await operation(i);
      }
    }),
  );
  return (nowMs() - start) / 1000;
}

/** At most `limit` operations at once. */
function limiter(limit) {
  let active = 0;
  const waiting = [];
  return async (operation) => {
    if (active >= limit) {
      await new Promise((resolve) => waiting.push(resolve));
    } else {
      active++;
    }
    try {
      return await operation();
    } finally {
      const next = waiting.shift();
      if (next) {
        next();
      } else {
        active--;
      }
    }
  };
}

function databaseUrl(server, database) {
  const url = new URL(server);
  url.pathname = `/${database}`;
  return url.toString();
}

// ---------------------------------------------------------------------------------------------------------------------
// The scratch database, and its removal whatever happens

const scratch = {
  name: `dbos_bench_ts_${crypto.randomBytes(4).toString('hex')}`,
  created: false,
  launched: false,
  pool: undefined,
};
let cleaning;
let interrupted = false;
let interruptedExitCode;

async function adminQuery(sql) {
  const admin = new pg.Client({ connectionString: databaseUrl(serverUrl, 'postgres') });
  await admin.connect();
  try {
    return await admin.query(sql);
  } finally {
    await admin.end();
  }
}

function cleanup() {
  cleaning ??= (async () => {
    if (scratch.launched) {
      await withTimeout(DBOS.shutdown(), 15000, 'DBOS.shutdown').catch((e) => progress(`warning: ${e.message}`));
    }
    if (scratch.pool) {
      await withTimeout(scratch.pool.end(), 10000, 'closing the raw pool').catch((e) => progress(`warning: ${e.message}`));
    }
    if (scratch.created) {
      try {
        // The SDK may close some of its connections a moment after its shutdown returns: let them go first.
        const deadline = nowMs() + 10000;
        const open = async () =>
          Number((await adminQuery(`SELECT count(*) AS n FROM pg_stat_activity WHERE datname = '${scratch.name}'`)).rows[0].n);
        while (nowMs() < deadline && (await open()) > 0) {
          await sleep(100);
        }
        // Any left are ended by the drop; a pool that still held one reports that as an error nobody listens to.
        process.on('uncaughtException', (error) => {
          if (error?.code !== '57P01') {
            console.error(error);
            process.exit(1);
          }
        });
        await adminQuery(`DROP DATABASE IF EXISTS "${scratch.name}" WITH (FORCE)`);
      } catch (error) {
        progress(`Could not drop the scratch database ${scratch.name}: ${error.message}. Drop it by hand: DROP DATABASE ${scratch.name};`);
        process.exitCode = 1;
      }
    }
  })();
  return cleaning;
}

for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]]) {
  process.on(signal, () => {
    interrupted = true;
    interruptedExitCode = code;
    progress(`${signal}: stopping, dropping the scratch database ${scratch.name}`);
    cleanup().finally(() => process.exit(code));
  });
}

// ---------------------------------------------------------------------------------------------------------------------
// The workflows, registered before launch as the SDK requires

const step = DBOS.registerStep(async (i) => i + 1, { name: 'step' });
const work = DBOS.registerStep(async (i) => i + 1, { name: 'work' });

const empty = DBOS.registerWorkflow(async (i) => i, { name: 'empty' });

const tenSteps = DBOS.registerWorkflow(
  async (i) => {
    for (let s = 0; s < 10; s++) {
      i = await step(i);
    }
    return i;
  },
  { name: 'ten-steps' },
);

const oneStep = DBOS.registerWorkflow(async (i) => work(i), { name: 'one-step' });

async function runWorkflow(workflow, arg) {
  const handle = await DBOS.startWorkflow(workflow)(arg);
  return handle.getResult();
}

// ---------------------------------------------------------------------------------------------------------------------
// Measurements

let rawSeq = 0;
function rawInsert() {
  return scratch.pool.query({
    name: 'raw-insert',
    text: 'INSERT INTO raw_inserts (id, n, payload) VALUES ($1, $2, $3)',
    values: ['bench', ++rawSeq, '42'],
  });
}

/** Raw commits per second from `connections` connections at once, `total` in all. */
async function rawInsertConcurrently(connections, total) {
  const perConnection = Math.floor(total / connections);
  const seconds = await spread(connections, perConnection * connections, () => rawInsert());
  return (perConnection * connections) / seconds;
}

/** A queue without DBOS: `writers` insert rows while one loop claims them in batches and completes each, 16 at once. */
async function rawQueue(count, writers, batch) {
  await scratch.pool.query('DROP TABLE IF EXISTS raw_queue; CREATE TABLE raw_queue (id bigserial PRIMARY KEY, status text NOT NULL, payload text)');
  const total = Math.floor(count / writers) * writers;
  const start = nowMs();
  const enqueue = spread(writers, total, () =>
    scratch.pool.query({ name: 'raw-enqueue', text: "INSERT INTO raw_queue (status, payload) VALUES ('ENQUEUED', '42')" }),
  );
  const inFlight = limiter(16);
  const completions = [];
  let claimed = 0;
  while (claimed < total) {
    const { rows } = await scratch.pool.query({
      name: 'raw-claim',
      text:
        "UPDATE raw_queue SET status = 'RUNNING' WHERE id IN " +
        "(SELECT id FROM raw_queue WHERE status = 'ENQUEUED' ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED) RETURNING id",
      values: [batch],
    });
    if (rows.length === 0) {
      await sleep(1);
      continue;
    }
    claimed += rows.length;
    for (const { id } of rows) {
      completions.push(inFlight(() => scratch.pool.query({ name: 'raw-complete', text: "UPDATE raw_queue SET status = 'DONE' WHERE id = $1", values: [id] })));
    }
  }
  await Promise.all(completions);
  await enqueue;
  return total / ((nowMs() - start) / 1000);
}

async function sequential() {
  for (let i = 0; i < settings.sequentialWarmup; i++) {
    await rawInsert();
    await runWorkflow(empty, i);
    await runWorkflow(tenSteps, i);
  }
  const raw = [];
  const rawAll = [];
  const emptyAll = [];
  const emptyMedians = [];
  const perStep = [];
  for (let round = 0; round < rounds; round++) {
    const r = await timeEach(settings.rawPerRound, () => rawInsert());
    const e = await timeEach(settings.workflowsPerRound, (i) => runWorkflow(empty, i));
    const t = await timeEach(settings.workflowsPerRound, (i) => runWorkflow(tenSteps, i));
    raw.push(median(r));
    rawAll.push(...r);
    emptyAll.push(...e);
    emptyMedians.push(median(e));
    // Within a round, so that a round slowed down as a whole by a busy machine counts as one bad round.
    perStep.push((median(t) - median(e)) / 10);
    progress(`round ${round + 1}/${rounds}: raw ${median(r).toFixed(1)} us, empty workflow ${median(e).toFixed(1)} us, per step ${perStep.at(-1).toFixed(1)} us`);
  }
  return [
    row('one step (sequential)', 'us', median(raw), median(perStep)),
    row('empty workflow median', 'us', median(raw), median(emptyMedians)),
    row('empty workflow p99', 'us', percentile(rawAll, 0.99), percentile(emptyAll, 0.99)),
  ];
}

async function concurrent() {
  for (let i = 0; i < settings.concurrentWarmup; i++) {
    await runWorkflow(tenSteps, i);
  }
  const rows = [];
  let rawPeak = 0;
  let oursPeak = 0;
  for (const n of levels) {
    const workflows = settings.workflowsAtOnce(n);
    const raw = [];
    const ours = [];
    for (let round = 0; round < settings.concurrentRounds; round++) {
      raw.push(await rawInsertConcurrently(n, workflows * 10));
      const seconds = await spread(n, workflows, (i) => runWorkflow(tenSteps, i));
      ours.push((workflows * 10) / seconds);
      progress(`${n} at once, round ${round + 1}/${settings.concurrentRounds}: ${ours.at(-1).toFixed(0)} steps/s, raw ${raw.at(-1).toFixed(0)} commits/s`);
    }
    rawPeak = Math.max(rawPeak, median(raw));
    oursPeak = Math.max(oursPeak, median(ours));
    rows.push(row(`10-step workflows, ${n} at once`, 'steps/s', median(raw), median(ours)));
  }
  rows.push(row('step throughput, best vs peak raw', 'steps/s', rawPeak, oursPeak));
  return rows;
}

async function queue(queueName) {
  const raw = [];
  const ours = [];
  const count = settings.queueCount;
  for (let round = 0; round < settings.queueRounds; round++) {
    raw.push(await rawQueue(count, queueWriters, settings.rawQueueBatch));
    const handles = new Array(count);
    const start = nowMs();
    await spread(queueWriters, count, async (i) => {
      handles[i] = await DBOS.startWorkflow(oneStep, { queueName })(i);
    });
    for (const handle of handles) {
      // A queued workflow's handle polls the database for its result (every second by default): poll often, so that
      // the wait for the last one does not stretch the measurement.
      await withTimeout(handle.getResult({ pollingIntervalMs: 10 }), 180000, 'a queued workflow');
    }
    ours.push(count / ((nowMs() - start) / 1000));
    progress(`queue round ${round + 1}/${settings.queueRounds}: ${ours.at(-1).toFixed(0)} workflows/s end to end, raw queue ${raw.at(-1).toFixed(0)}/s`);
  }
  return [row('queued 1-step workflows, one process', 'workflows/s', median(raw), median(ours))];
}

/** The queue as a user writes it: each enqueue awaited before the next, on a queue with default settings, then every result. */
async function queueOneByOne(queueName) {
  const count = settings.oneByOneCount;
  for (let i = 0; i < settings.oneByOneWarmup; i++) {
    const handle = await DBOS.startWorkflow(oneStep, { queueName })(i);
    await withTimeout(handle.getResult({ pollingIntervalMs: 10 }), 180000, 'a queued workflow');
  }
  const raw = [];
  const ours = [];
  for (let round = 0; round < settings.queueRounds; round++) {
    const rawStart = nowMs();
    for (let i = 0; i < count; i++) {
      await rawInsert();
    }
    raw.push(count / ((nowMs() - rawStart) / 1000));
    const handles = new Array(count);
    const start = nowMs();
    for (let i = 0; i < count; i++) {
      handles[i] = await DBOS.startWorkflow(oneStep, { queueName })(i);
    }
    for (const handle of handles) {
      // Polled often, as in the Queue workload, so that the wait for the last result does not stretch the measurement.
      await withTimeout(handle.getResult({ pollingIntervalMs: 10 }), 180000, 'a queued workflow');
    }
    ours.push(count / ((nowMs() - start) / 1000));
    progress(`one-by-one round ${round + 1}/${settings.queueRounds}: ${ours.at(-1).toFixed(0)} workflows/s, raw ${raw.at(-1).toFixed(0)} sequential commits/s`);
  }
  return [row('queued 1-step workflows, enqueued one by one', 'workflows/s', median(raw), median(ours))];
}

// ---------------------------------------------------------------------------------------------------------------------
// Output

function row(workload, unit, raw, ours) {
  return {
    workload,
    backend: 'Postgres',
    unit,
    raw: raw === null ? null : round(raw),
    ours: round(ours),
    ratio: raw === null ? null : round(ours / raw),
    sdk: SDK_LABEL,
  };
}

function round(value) {
  return Number(value.toPrecision(6));
}

function format(value) {
  return value === null || value === undefined || Number.isNaN(value) ? '-' : value >= 100 ? value.toFixed(0) : value.toFixed(2);
}

function printTable(rows, environment) {
  const header = ['workload', 'unit', 'raw', 'TypeScript SDK', 'ratio'];
  const lines = rows.map((r) => [r.workload, r.unit, format(r.raw), format(r.ours), format(r.ratio)]);
  const widths = header.map((h, c) => Math.max(h.length, ...lines.map((l) => l[c].length)));
  const render = (cells) => cells.map((cell, c) => (c < 2 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ');
  console.log();
  console.log(render(header));
  for (const line of lines) {
    console.log(render(line));
  }
  console.log();
  console.log(environment);
}

// ---------------------------------------------------------------------------------------------------------------------
// The run

async function main() {
  const started = nowMs();
  await adminQuery(`CREATE DATABASE "${scratch.name}"`);
  scratch.created = true;
  const systemDatabaseUrl = databaseUrl(serverUrl, scratch.name);
  progress(`scratch database ${scratch.name} on ${new URL(serverUrl).host}`);

  // As many connections as the .NET benchmark's raw pool.
  scratch.pool = new pg.Pool({ connectionString: systemDatabaseUrl, max: 64 });
  await scratch.pool.query('CREATE TABLE raw_inserts (id text NOT NULL, n int8 NOT NULL, payload text, PRIMARY KEY (id, n))');
  const serverVersion = (await scratch.pool.query('SHOW server_version')).rows[0].server_version;
  const synchronousCommit = (await scratch.pool.query('SHOW synchronous_commit')).rows[0].synchronous_commit;

  DBOS.setConfig({ name: 'bench-peer-ts', systemDatabaseUrl, applicationVersion: 'bench', logLevel: 'warn', systemDatabasePoolSize: poolSize });
  await DBOS.launch();
  scratch.launched = true;
  // The .NET benchmark's queue polls every 50 ms (the SDK's default is 1 s).
  const benchQueue = await DBOS.registerQueue('bench-queue', { minPollingIntervalMs: 50 });
  // The one-by-one workload's queue is registered as the .NET benchmark's: with the defaults.
  const userQueue = await DBOS.registerQueue('user-queue');

  const rows = [];
  for (const [name, workload] of [
    ['Sequential', sequential],
    ['Concurrent', concurrent],
    ['Queue', () => queue(benchQueue.name)],
    ['QueueOneByOne', () => queueOneByOne(userQueue.name)],
  ]) {
    progress(`== ${name}`);
    for (const r of await workload()) {
      progress(`   ${r.workload}: ${format(r.ours)} ${r.unit}${r.ratio === null ? '' : ` (ratio ${format(r.ratio)})`}`);
      rows.push(r);
    }
  }

  const environment =
    `${os.cpus().length} cores, ${os.type()} ${os.release()}, Node.js ${process.versions.node}, @dbos-inc/dbos-sdk ${sdkVersion}, ` +
    `Postgres ${serverVersion} (synchronous_commit=${synchronousCommit}), systemDatabasePoolSize ${poolSize}, ` +
    `${((nowMs() - started) / 1000).toFixed(0)} s${smoke ? ' (smoke run: figures are not meaningful)' : ''}`;
  printTable(rows, environment);
  if (options.json) {
    fs.writeFileSync(options.json, `${JSON.stringify(rows, null, 2)}\n`);
    progress(`wrote ${options.json}`);
  }
}

(async () => {
  try {
    await main();
  } catch (error) {
    // After a signal, the measurement fails as the SDK shuts down under it: that is no news.
    if (!interrupted) {
      console.error(`The benchmark failed: ${error && error.stack ? error.stack : error}`);
      process.exitCode = 1;
    }
  } finally {
    await cleanup();
  }
  // Whatever the SDK may leave scheduled, the run is over.
  process.exit(interruptedExitCode ?? process.exitCode ?? 0);
})();
