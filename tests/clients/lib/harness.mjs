// Shared by the client scripts: the environment run.sh passes, `check` (one `ok|FAIL <name>: <detail>`
// line per check), the TLS front's request log, and the simulator's own request counter (to see
// requests that went around the front).
//
// Nothing here prints a token or a secret: details are built from status codes, error codes,
// messages and the front's log, which holds no header values and no bodies.

import fs from 'node:fs';

export function env(name) {
  const v = process.env[name];
  if (v === undefined || v === '') {
    throw new Error(`${name} is not set (run through tests/clients/run.sh)`);
  }
  return v;
}

export const cfg = {
  // Read where needed, never printed.
  secret: () => env('CLIENT_SECRET'),
  authorityHost: process.env.AUTHORITY_HOST ?? 'https://login.microsoftonline.com',
  frontLog: process.env.FRONT_LOG,
  simUrl: process.env.SIM_URL,
  checkTimeoutMs: Number(process.env.CHECK_TIMEOUT_MS ?? 60000),
};

let failures = 0;
let count = 0;

function oneLine(s) {
  return String(s).replace(/\s+/g, ' ').trim().slice(0, 900);
}

/** Runs one check: `fn` returns a detail string (ok) or throws (FAIL). Never hangs past the deadline. */
export async function check(name, fn) {
  count += 1;
  const mark = frontMark();
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${cfg.checkTimeoutMs} ms`)), cfg.checkTimeoutMs);
  });
  try {
    const detail = await Promise.race([fn(), deadline]);
    console.log(`ok ${name}: ${oneLine(detail ?? '')}`);
    return true;
  } catch (e) {
    failures += 1;
    const wire = frontSince(mark);
    const tail = wire.length ? `wire: ${summarise(wire)}` : 'wire: no request in this check';
    console.log(`FAIL ${name}: ${oneLine(describe(e))} | ${oneLine(tail)}`);
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** A failing requirement inside a check. */
export function must(cond, message) {
  if (!cond) {
    throw new Error(message);
  }
}

/** An error from msal, dynamics-web-api, fetch or our own `must`, as one line without secrets. */
export function describe(e) {
  if (e == null) {
    return 'unknown error';
  }
  const parts = [];
  if (e.status) parts.push(`HTTP ${e.status}`);
  if (e.errorCode) parts.push(`errorCode=${e.errorCode}`);
  if (e.code && typeof e.code === 'string') parts.push(`code=${e.code}`);
  if (e.subError) parts.push(`subError=${e.subError}`);
  const msg = e.errorMessage || e.message || String(e);
  parts.push(msg.split('\n')[0]);
  if (e.cause && e.cause.code) parts.push(`cause=${e.cause.code}`);
  return parts.join(' ');
}

/** Sets the exit code: 0 all ok, 3 some check failed (1 stays node's own "crashed"). */
export function done() {
  process.exitCode = failures ? 3 : 0;
  return { count, failures };
}

// ---- the TLS front's log ----------------------------------------------------------------------

function readLog() {
  if (!cfg.frontLog || !fs.existsSync(cfg.frontLog)) {
    return [];
  }
  return fs
    .readFileSync(cfg.frontLog, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

export function frontMark() {
  return readLog().length;
}

export function frontSince(mark) {
  return readLog().slice(mark);
}

/** `GET host/path -> 404` for each logged request; long runs of the same line are folded. */
export function summarise(entries, max = 8) {
  const lines = entries.map((e) => {
    const path = e.path.length > 140 ? `${e.path.slice(0, 140)}...` : e.path;
    const scheme = e.listener === 'http' ? 'http://' : '';
    const extra = e.listener === 'http' ? ` (plain http${e.bearer ? ', WITH bearer token' : ''})` : '';
    return `${e.method} ${scheme}${e.host}${path} -> ${e.status}${e.error ? ` ${e.error}` : ''}${extra}`;
  });
  const folded = [];
  for (const l of lines) {
    const last = folded[folded.length - 1];
    if (last && last.line === l) last.n += 1;
    else folded.push({ line: l, n: 1 });
  }
  const shown = folded.slice(-max).map((f) => (f.n > 1 ? `${f.line} (x${f.n})` : f.line));
  const hidden = folded.length - shown.length;
  return (hidden > 0 ? `[${hidden} earlier] ` : '') + shown.join('; ');
}

// ---- the simulator's request counter ----------------------------------------------------------

/** Service requests the simulator has seen (its `/_sim/state` `requests`), or null. */
export async function simRequests() {
  if (!cfg.simUrl) return null;
  try {
    const r = await fetch(`${cfg.simUrl}/_sim/state`);
    const s = await r.json();
    return typeof s.requests === 'number' ? s.requests : null;
  } catch {
    return null;
  }
}

/** Runs `fn` and reports how many service requests reached the simulator without the front. */
export async function bypassing(fn) {
  const before = await simRequests();
  const mark = frontMark();
  const out = await fn();
  const after = await simRequests();
  const viaFront = frontSince(mark).filter((e) => e.listener === 'https').length;
  const direct = before == null || after == null ? null : after - before - viaFront;
  return { out, direct, wire: frontSince(mark) };
}

/** The host part of a URL, or the string itself when it is not one. */
export function origin(u) {
  try {
    const x = new URL(u);
    return `${x.protocol}//${x.host}`;
  } catch {
    return String(u);
  }
}
