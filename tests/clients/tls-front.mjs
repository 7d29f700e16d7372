// A TLS front on the real Microsoft host names for `cutover sim`.
//
// Terminates TLS on HTTPS_LISTEN (default 127.0.0.1:443) with a throw-away certificate whose SANs
// cover every host in hosts.txt, and forwards each request as plain HTTP to the simulator (UPSTREAM,
// e.g. http://127.0.0.1:41234), keeping the original Host header and adding
// X-Forwarded-Proto: https and X-Forwarded-Host: <original Host>.
//
// It also listens for plain HTTP on HTTP_LISTEN (default 127.0.0.1:80) and answers every request
// there with 421 without forwarding it: a real client that is told to follow an http:// link on a
// real host name lands here, and the log records whether it carried a bearer token.
//
// Every request is appended to FRONT_LOG as one JSON line {t, listener, method, host, path,
// status, ctype, odataVersion, bearer, entityId, location, form}. No request header value, body
// or token is ever logged: `form` holds only the field NAMES of a token request; `path` keeps
// the query string (queries carry no secrets; the token endpoint takes its form in the body).
//
// DIAGNOSTIC CRUTCH (CRUTCH=1, run.sh's CLIENTS_CRUTCH=1; never the default): the front itself
// answers Entra's discovery documents (/{tenant}/v2.0/.well-known/openid-configuration and
// /common/discovery/instance) and rewrites the simulator's loopback links (http://127.0.0.1:PORT)
// in bodies and OData-EntityId/Location headers to https://<the Host called>. That only serves
// to list the failures hidden behind "no token" and "next page 404"; a run with it proves nothing.
// Crutch answers are logged with `crutch: true`.
//
// Ready when it prints `front ready https=<addr> http=<addr>` on stdout. Runs until SIGTERM/SIGINT.
// Needs no dependency beyond node itself.

import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';

const env = (k, d) => {
  const v = process.env[k] ?? d;
  if (v === undefined) {
    console.error(`tls-front: ${k} is not set`);
    process.exit(2);
  }
  return v;
};

const upstream = new URL(env('UPSTREAM'));
const [httpsHost, httpsPort] = env('HTTPS_LISTEN', '127.0.0.1:443').split(':');
const [httpHost, httpPort] = env('HTTP_LISTEN', '127.0.0.1:80').split(':');
const logFile = env('FRONT_LOG');
const key = fs.readFileSync(env('TLS_KEY'));
const cert = fs.readFileSync(env('TLS_CERT'));

const crutch = process.env.CRUTCH === '1';
const log = fs.openSync(logFile, 'a');
function record(entry) {
  fs.writeSync(log, JSON.stringify({ t: Date.now(), ...entry }) + '\n');
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

// ---- the diagnostic crutch -------------------------------------------------------------------

function discovery(req) {
  const host = req.headers.host ?? '';
  if (!/^login\.(microsoftonline\.com|windows\.net|microsoft\.com)$/.test(host) || req.method !== 'GET') return null;
  const url = new URL(req.url, `https://${host}`);
  const oidc = url.pathname.match(/^\/([^/]+)\/v2\.0\/\.well-known\/openid-configuration$/);
  if (oidc) {
    const a = `https://${host}/${oidc[1]}`;
    return {
      token_endpoint: `${a}/oauth2/v2.0/token`,
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      jwks_uri: `${a}/discovery/v2.0/keys`,
      response_modes_supported: ['query', 'fragment', 'form_post'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      issuer: `https://login.microsoftonline.com/${oidc[1]}/v2.0`,
      request_uri_parameter_supported: false,
      userinfo_endpoint: 'https://graph.microsoft.com/oidc/userinfo',
      authorization_endpoint: `${a}/oauth2/v2.0/authorize`,
      device_authorization_endpoint: `${a}/oauth2/v2.0/devicecode`,
      http_logout_supported: true,
      frontchannel_logout_supported: true,
      end_session_endpoint: `${a}/oauth2/v2.0/logout`,
      tenant_region_scope: 'EU',
      cloud_instance_name: 'microsoftonline.com',
      cloud_graph_host_name: 'graph.windows.net',
      msgraph_host: 'graph.microsoft.com',
    };
  }
  if (url.pathname === '/common/discovery/instance') {
    const aliases = ['login.microsoftonline.com', 'login.windows.net', 'login.microsoft.com', 'sts.windows.net'];
    const ae = url.searchParams.get('authorization_endpoint') ?? '';
    const tenant = (ae.match(/^https:\/\/[^/]+\/([^/]+)\//) ?? [])[1] ?? 'common';
    return {
      tenant_discovery_endpoint: `https://login.microsoftonline.com/${tenant}/v2.0/.well-known/openid-configuration`,
      'api-version': '1.1',
      metadata: [{ preferred_network: 'login.microsoftonline.com', preferred_cache: 'login.windows.net', aliases }],
    };
  }
  return null;
}

function relink(text, host) {
  return text.split(`${upstream.protocol}//${upstream.host}`).join(`https://${host}`);
}

function forward(req, res) {
  const host = req.headers.host ?? '';
  let fields;
  const doc = crutch ? discovery(req) : null;
  if (doc) {
    req.resume();
    record({ listener: 'https', method: req.method, host, path: req.url, status: 200, crutch: true });
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify(doc));
    return;
  }
  const headers = { ...req.headers };
  headers['x-forwarded-proto'] = 'https';
  headers['x-forwarded-host'] = host;
  // Host is kept as the client sent it: the simulator must build its links from it.
  const up = http.request(
    {
      protocol: upstream.protocol,
      hostname: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path: req.url,
      headers,
      agent,
    },
    (ur) => {
      record({
        listener: 'https',
        method: req.method,
        host,
        path: req.url,
        status: ur.statusCode,
        ctype: ur.headers['content-type'] ?? null,
        odataVersion: ur.headers['odata-version'] ?? null,
        bearer: /^bearer /i.test(req.headers.authorization ?? ''),
        ...(fields ? { form: fields } : {}),
        entityId: ur.headers['odata-entityid'],
        location: ur.headers.location,
        ...(crutch ? { crutch: true } : {}),
      });
      if (!crutch) {
        res.writeHead(ur.statusCode, ur.rawHeaders);
        ur.pipe(res);
        return;
      }
      const chunks = [];
      ur.on('data', (c) => chunks.push(c));
      ur.on('end', () => {
        const headers = { ...ur.headers };
        for (const h of ['odata-entityid', 'location']) if (headers[h]) headers[h] = relink(headers[h], host);
        let body = Buffer.concat(chunks);
        if (/json|multipart|xml|text/.test(headers['content-type'] ?? '')) body = Buffer.from(relink(body.toString('utf8'), host));
        delete headers['transfer-encoding'];
        headers['content-length'] = String(body.length);
        res.writeHead(ur.statusCode, headers);
        res.end(body);
      });
    },
  );
  up.on('error', (e) => {
    record({ listener: 'https', method: req.method, host, path: req.url, status: 502, error: e.code ?? String(e) });
    if (!res.headersSent) {
      res.writeHead(502, { 'content-type': 'text/plain' });
    }
    res.end(`tls-front: upstream error ${e.code ?? e}`);
  });
  // Token requests: the names (never the values) of the form fields, so the log shows what an
  // Entra client sends. The body is forwarded unchanged.
  const form = /^login\./.test(host) && /x-www-form-urlencoded/.test(req.headers['content-type'] ?? '');
  if (!form) {
    req.pipe(up);
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    fields = [...new URLSearchParams(body.toString('utf8')).keys()];
    up.end(body);
  });
}

const tls = https.createServer({ key, cert }, forward);
tls.keepAliveTimeout = 5000;

const plain = http.createServer((req, res) => {
  record({
    listener: 'http',
    method: req.method,
    host: req.headers.host ?? '',
    path: req.url,
    status: 421,
    bearer: /^bearer /i.test(req.headers.authorization ?? ''),
  });
  req.resume();
  res.writeHead(421, { 'content-type': 'text/plain' });
  res.end('tls-front: plain http is not served on the real host names (the real services answer https only)\n');
});

let up = 0;
function listening() {
  up += 1;
  if (up === 2) {
    console.log(`front ready https=${httpsHost}:${httpsPort} http=${httpHost}:${httpPort}`);
  }
}
tls.listen(Number(httpsPort), httpsHost, listening);
plain.listen(Number(httpPort), httpHost, listening);
for (const s of [tls, plain]) {
  s.on('error', (e) => {
    console.error(`tls-front: ${e.message}`);
    process.exit(1);
  });
}

function stop() {
  tls.close();
  plain.close();
  agent.destroy();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
