// @azure/msal-node against the simulator's Entra ID, through the TLS front on
// login.microsoftonline.com: client-credential tokens for the Dataverse and the F&O resources,
// the token cache, and the errors a real tenant answers.

import { cfg, check, done, env, frontMark, frontSince, must, summarise } from './lib/harness.mjs';
import { ConfidentialClientApplication } from '@azure/msal-node';
import { app, makeApp } from './lib/tokens.mjs';

const dv = env('DATAVERSE_URL');
const fno = env('FNO_URL');
const authorityHost = cfg.authorityHost;

async function token(resource, label) {
  const mark = frontMark();
  const r = await app().acquireTokenByClientCredential({ scopes: [`${resource}/.default`] });
  must(r && r.accessToken, 'no access token in the result');
  must(r.tokenType === 'Bearer', `tokenType ${r.tokenType}`);
  must(r.expiresOn instanceof Date && r.expiresOn > new Date(), `expiresOn ${r.expiresOn}`);
  const wire = frontSince(mark);
  return `${label} token (expires ${r.expiresOn.toISOString()}), msal sent: ${summarise(wire) || 'nothing (cache)'}`;
}

await check('msal.token.dataverse', () => token(dv, 'Dataverse'));
await check('msal.token.fno', () => token(fno, 'F&O'));

await check('msal.token.cache', async () => {
  const mark = frontMark();
  const r = await app().acquireTokenByClientCredential({ scopes: [`${dv}/.default`] });
  must(r && r.accessToken, 'no access token');
  const wire = frontSince(mark);
  must(r.fromCache === true, `second request was not served from the cache (fromCache=${r.fromCache})`);
  must(wire.length === 0, `cache hit still sent ${summarise(wire)}`);
  return 'second acquire served from the cache with no request';
});

// A resource no app in the tenant exposes. Entra: 400 invalid_resource, AADSTS500011 ("The resource
// principal named ... was not found in the tenant").
await check('msal.error.unknown-resource', async () => {
  try {
    await makeApp().acquireTokenByClientCredential({ scopes: ['https://nosuchorg.crm.dynamics.com/.default'] });
  } catch (e) {
    must(e.errorCode === 'invalid_resource', `errorCode=${e.errorCode}: ${(e.errorMessage ?? '').split('\n')[0].slice(0, 120)} (Entra answers invalid_resource AADSTS500011)`);
    must(/AADSTS500011/.test(e.errorMessage ?? ''), `message lacks AADSTS500011: ${(e.errorMessage ?? '').split('\n')[0]}`);
    return 'invalid_resource AADSTS500011';
  }
  throw new Error('a token was issued for a resource the tenant does not have');
});

// A wrong secret. Entra: HTTP 401, invalid_client, AADSTS7000215.
await check('msal.error.bad-secret', async () => {
  const mark = frontMark();
  try {
    await makeApp({ secret: 'not-the-secret' }).acquireTokenByClientCredential({ scopes: [`${dv}/.default`] });
  } catch (e) {
    must(e.errorCode === 'invalid_client', `errorCode=${e.errorCode} (Entra answers invalid_client)`);
    must(/AADSTS7000215/.test(e.errorMessage ?? ''), `message lacks AADSTS7000215: ${(e.errorMessage ?? '').split('\n')[0]}`);
    const post = frontSince(mark).find((x) => x.method === 'POST');
    must(post && post.status === 401, `invalid_client answered HTTP ${post?.status} (Entra answers 401)`);
    return 'HTTP 401 invalid_client AADSTS7000215';
  }
  throw new Error('a token was issued for a wrong client secret');
});

// A tenant that does not exist. Entra: HTTP 400, invalid_request, AADSTS90002 ("Tenant '...' not found").
await check('msal.error.unknown-tenant', async () => {
  const other = new ConfidentialClientApplication({
    auth: { clientId: env('CLIENT_ID'), authority: `${authorityHost}/00000000-0000-0000-0000-00000000dead`, clientSecret: cfg.secret() },
  });
  try {
    await other.acquireTokenByClientCredential({ scopes: [`${dv}/.default`] });
  } catch (e) {
    must(/AADSTS90002/.test(e.errorMessage ?? ''), `${e.errorCode}: ${(e.errorMessage ?? '').split('\n')[0]} (Entra answers AADSTS90002)`);
    return `${e.errorCode} AADSTS90002`;
  }
  throw new Error('a token was issued in a tenant that does not exist');
});

// ---- wire checks: the discovery documents other Entra clients read before any token -----------
// (msal-node uses its built-in metadata for login.microsoftonline.com; Python msal, azure-identity,
// MSAL.NET and Microsoft.Identity.Web read these.)

await check('entra.wire.openid-configuration', async () => {
  const tenant = env('TENANT_ID');
  const r = await fetch(`${authorityHost}/${tenant}/v2.0/.well-known/openid-configuration`);
  must(r.status === 200, `GET /${tenant}/v2.0/.well-known/openid-configuration answered ${r.status}`);
  const d = await r.json();
  must(d.token_endpoint === `${authorityHost}/${tenant}/oauth2/v2.0/token`, `token_endpoint ${d.token_endpoint}`);
  must(d.issuer === `https://login.microsoftonline.com/${tenant}/v2.0`, `issuer ${d.issuer}`);
  must(d.authorization_endpoint && d.jwks_uri, 'no authorization_endpoint/jwks_uri');
  return 'token_endpoint, issuer, authorization_endpoint, jwks_uri';
});

await check('entra.wire.openid-configuration-v1', async () => {
  const tenant = env('TENANT_ID');
  const r = await fetch(`${authorityHost}/${tenant}/.well-known/openid-configuration`);
  must(r.status === 200, `GET /${tenant}/.well-known/openid-configuration answered ${r.status}`);
  const d = await r.json();
  must(d.token_endpoint === `${authorityHost}/${tenant}/oauth2/token`, `token_endpoint ${d.token_endpoint}`);
  must(d.issuer === `https://sts.windows.net/${tenant}/`, `issuer ${d.issuer}`);
  return 'v1 token_endpoint and issuer';
});

await check('entra.wire.unknown-tenant-discovery', async () => {
  const r = await fetch(`${authorityHost}/00000000-0000-0000-0000-00000000dead/v2.0/.well-known/openid-configuration`);
  const d = await r.json().catch(() => ({}));
  must(r.status === 400, `an unknown tenant's discovery document answered ${r.status}`);
  must(/^AADSTS90002:/.test(d.error_description ?? ''), `error_description ${String(d.error_description).slice(0, 80)}`);
  for (const k of ['error', 'error_codes', 'timestamp', 'trace_id', 'correlation_id', 'error_uri']) must(k in d, `no ${k}`);
  return `400 ${d.error} AADSTS90002`;
});

await check('entra.wire.instance-discovery', async () => {
  const ae = encodeURIComponent(`${authorityHost}/${env('TENANT_ID')}/oauth2/v2.0/authorize`);
  const r = await fetch(`${authorityHost}/common/discovery/instance?api-version=1.1&authorization_endpoint=${ae}`);
  must(r.status === 200, `GET /common/discovery/instance answered ${r.status}`);
  const d = await r.json();
  must(d.tenant_discovery_endpoint && Array.isArray(d.metadata), 'no tenant_discovery_endpoint/metadata');
  must(d.metadata.some((m) => (m.aliases ?? []).includes('login.microsoftonline.com')), 'login.microsoftonline.com not among the aliases');
  return d.tenant_discovery_endpoint;
});

done();
