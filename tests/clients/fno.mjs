// F&O OData through the TLS front on the environment's real host name, with node's own fetch and a
// bearer token from @azure/msal-node for the F&O resource: what any F&O client (Power Query,
// OData Connected Service, Logic Apps, a script) asks first.

import { bypassing, check, done, env, must, origin } from './lib/harness.mjs';
import { tokenFor } from './lib/tokens.mjs';

const base = env('FNO_URL');
const host = new URL(base).host;

async function get(path, headers = {}) {
  const token = await tokenFor(base);
  return fetch(`${base}${path}`, {
    headers: { authorization: `Bearer ${token}`, accept: 'application/json', 'odata-version': '4.0', 'odata-maxversion': '4.0', ...headers },
  });
}

async function json(r, what) {
  const text = await r.text();
  must(r.status === 200, `${what} answered ${r.status}: ${text.slice(0, 160)}`);
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${what} is not JSON (${r.headers.get('content-type')}): ${text.slice(0, 80)}`);
  }
}

function onOurHost(link, what) {
  must(link, `${what} missing`);
  must(origin(link) === `https://${host}`, `${what} is ${origin(link)}/..., not https://${host}/... (the host the client called)`);
}

await check('fno.service-document', async () => {
  const b = await json(await get('/data/'), 'GET /data/');
  must(Array.isArray(b.value), 'no value array');
  must(b.value.some((x) => x.name === 'CustomersV3' && x.kind === 'EntitySet'), 'CustomersV3 not listed as an EntitySet');
  onOurHost(b['@odata.context'], '@odata.context');
  return `${b.value.length} entity sets`;
});

await check('fno.metadata', async () => {
  const r = await get('/data/$metadata', { accept: 'application/xml' });
  const text = await r.text();
  must(r.status === 200, `GET /data/$metadata answered ${r.status}: ${text.slice(0, 160)}`);
  must(/xml/.test(r.headers.get('content-type') ?? ''), `content type ${r.headers.get('content-type')}`);
  must(text.includes('<edmx:Edmx') && /EntitySet Name="CustomersV3"/.test(text), 'no CSDL with an EntitySet CustomersV3');
  must(/<Key>/.test(text), 'entity types without <Key>');
  return `${text.length} bytes of CSDL`;
});

await check('fno.metadata.keys-and-enums', async () => {
  const r = await get('/data/$metadata', { accept: 'application/xml' });
  const text = await r.text();
  must(r.status === 200, `GET /data/$metadata answered ${r.status}`);
  must(/<Schema Namespace="Microsoft\.Dynamics\.DataEntities"/.test(text), 'no Microsoft.Dynamics.DataEntities schema');
  const set = text.match(/<EntitySet Name="CustomersV3" EntityType="Microsoft\.Dynamics\.DataEntities\.([A-Za-z0-9]+)"/);
  must(set, 'CustomersV3 has no entity type');
  const type = text.match(new RegExp(`<EntityType Name="${set[1]}">(.*?)</EntityType>`));
  must(type, `no EntityType ${set[1]}`);
  const keys = [...type[1].matchAll(/<PropertyRef Name="([^"]+)"/g)].map((m) => m[1]);
  must(keys.join(',') === 'dataAreaId,CustomerAccount', `key of ${set[1]}: ${keys}`);
  must(/<EnumType Name="NoYes">/.test(text), 'no EnumType NoYes');
  must(/<EntityContainer Name="Resources">/.test(text), 'the entity container is not Resources');
  return `${set[1]} keyed by ${keys.join(', ')}; NoYes; container Resources`;
});

await check('fno.metadata-api.public-entity', async () => {
  const b = await json(await get("/Metadata/PublicEntities?$filter=EntitySetName eq 'CustomersV3'"), 'GET /Metadata/PublicEntities');
  must(b.value?.length === 1, `${b.value?.length} entities`);
  const keys = b.value[0].Properties.filter((p) => p.IsKey).map((p) => p.Name);
  must(keys.includes('CustomerAccount') && keys.includes('dataAreaId'), `keys ${keys}`);
  return `${b.value[0].Name}: keys ${keys.join(', ')}`;
});

await check('fno.metadata-api', async () => {
  const b = await json(await get('/Metadata/DataEntities?$top=1'), 'GET /Metadata/DataEntities');
  must(Array.isArray(b.value) && b.value.length === 1, 'no value');
  return `first entity ${b.value[0].Name ?? JSON.stringify(b.value[0]).slice(0, 80)}`;
});

await check('fno.query.cross-company-top', async () => {
  const b = await json(await get('/data/CustomersV3?cross-company=true&$top=2'), 'CustomersV3?cross-company=true&$top=2');
  must(Array.isArray(b.value) && b.value.length === 2, `${b.value?.length} rows`);
  must(b.value.every((x) => x.dataAreaId && x.CustomerAccount), 'rows without dataAreaId/CustomerAccount');
  must(new Set(b.value.map((x) => x.dataAreaId)).size >= 1, 'no company');
  return b.value.map((x) => `${x.dataAreaId}/${x.CustomerAccount}`).join(', ');
});

await check('fno.links.context', async () => {
  const b = await json(await get('/data/CustomersV3?cross-company=true&$top=1'), 'CustomersV3');
  onOurHost(b['@odata.context'], '@odata.context');
  return `@odata.context on https://${host}`;
});

await check('fno.count', async () => {
  const r = await get('/data/CustomersV3/$count?cross-company=true', { accept: 'text/plain' });
  const t = await r.text();
  must(r.status === 200 && /^\d+$/.test(t), `answer ${r.status} ${t.slice(0, 60)}`);
  return `${t} customers`;
});

await check('fno.links.nextlink', async () => {
  const b = await json(await get('/data/CustomersV3?cross-company=true&$select=CustomerAccount', { prefer: 'odata.maxpagesize=5' }), 'page 1');
  must(b.value.length === 5, `${b.value.length} rows for odata.maxpagesize=5`);
  onOurHost(b['@odata.nextLink'], '@odata.nextLink');
  return b['@odata.nextLink'];
});

// Follows the next link verbatim, as every OData client does, and checks it stays on the front.
await check('fno.paging', async () => {
  const b = await json(await get('/data/CustomersV3?cross-company=true&$select=CustomerAccount', { prefer: 'odata.maxpagesize=5' }), 'page 1');
  must(b['@odata.nextLink'], 'no next link');
  const { out, direct } = await bypassing(async () => json(await fetch(b['@odata.nextLink'], {
    headers: { authorization: `Bearer ${await tokenFor(base)}`, accept: 'application/json', prefer: 'odata.maxpagesize=5' },
  }), 'page 2'));
  must(direct === 0, `page 2 went straight to the simulator's loopback address (${origin(b['@odata.nextLink'])}), bearer token and all, bypassing TLS`);
  must(out.value.length === 5 && out.value[0].CustomerAccount !== b.value[0].CustomerAccount, 'page 2 repeats page 1');
  return 'two pages of 5, next link on the real host';
});

await check('fno.wire.headers', async () => {
  const r = await get('/data/CustomersV3?cross-company=true&$top=1');
  must(r.status === 200, `HTTP ${r.status}`);
  const problems = [];
  if (r.headers.get('odata-version') !== '4.0') problems.push(`OData-Version: ${r.headers.get('odata-version')}`);
  if (!/^application\/json;.*odata\.metadata=minimal/.test(r.headers.get('content-type') ?? '')) problems.push(`Content-Type: ${r.headers.get('content-type')}`);
  must(!problems.length, `${problems.join('; ')} (an OData v4 service answers OData-Version: 4.0 and application/json; odata.metadata=minimal)`);
  return 'OData-Version 4.0, odata.metadata=minimal';
});

await check('fno.batch', async () => {
  const token = await tokenFor(base);
  const b = 'batch_harness1';
  const cs = 'changeset_harness1';
  const crlf = (lines) => lines.join('\r\n');
  const body = crlf([
    `--${b}`,
    'Content-Type: application/http',
    'Content-Transfer-Encoding: binary',
    '',
    `GET ${base}/data/CustomersV3?cross-company=true&$top=1 HTTP/1.1`,
    'Accept: application/json',
    '',
    '',
    `--${b}`,
    'Content-Type: application/http',
    'Content-Transfer-Encoding: binary',
    '',
    `GET ${base}/data/CustomersV3/$count?cross-company=true HTTP/1.1`,
    'Accept: text/plain',
    '',
    '',
    `--${b}`,
    `Content-Type: multipart/mixed; boundary=${cs}`,
    '',
    `--${cs}`,
    'Content-Type: application/http',
    'Content-Transfer-Encoding: binary',
    'Content-ID: 1',
    '',
    `POST ${base}/data/CustomersV3 HTTP/1.1`,
    'Content-Type: application/json',
    '',
    JSON.stringify({ dataAreaId: 'usmf', CustomerAccount: 'HARNESS-B1', OrganizationName: 'Harness batch' }),
    `--${cs}--`,
    '',
    `--${b}--`,
    '',
  ]);
  const r = await fetch(`${base}/data/$batch`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': `multipart/mixed; boundary=${b}`, accept: 'multipart/mixed', 'odata-version': '4.0' },
    body,
  });
  const text = await r.text();
  must(r.status === 200, `POST /data/$batch answered ${r.status}: ${text.slice(0, 160)}`);
  must(/^multipart\/mixed/.test(r.headers.get('content-type') ?? ''), `content type ${r.headers.get('content-type')}`);
  const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));
  must(statuses.length === 3 && statuses[0] === 200 && statuses[1] === 200 && statuses[2] === 201, `part statuses ${statuses}`);
  // Clean up the batch's record.
  await fetch(`${base}/data/CustomersV3(dataAreaId='usmf',CustomerAccount='HARNESS-B1')?cross-company=true`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${token}` },
  });
  return 'two GETs and a changeset POST';
});

// The services are separate hosts: an F&O path on the Dataverse host is not F&O.
await check('fno.wire.host-routing', async () => {
  const token = await tokenFor(base);
  const r = await fetch(`${env('DATAVERSE_URL')}/data/CustomersV3?cross-company=true&$top=1`, { headers: { authorization: `Bearer ${token}` } });
  must(r.status === 404, `GET https://${new URL(env('DATAVERSE_URL')).host}/data/CustomersV3 answered ${r.status} (the simulator routes by path and ignores the host)`);
  return '404 on the Dataverse host';
});

await check('fno.error.unknown-option', async () => {
  const r = await get('/data/CustomersV3?cross-company=true&$top=1&$frobnicate=1');
  must(r.status === 400, `an unknown system query option answered ${r.status}`);
  return '400';
});

await check('fno.error.unknown-column', async () => {
  const r = await get("/data/CustomersV3?cross-company=true&$top=1&$filter=NoSuchField eq 'x'");
  const b = await r.json().catch(() => ({}));
  must(r.status === 400, `an unknown property in $filter answered ${r.status}`);
  must(/NoSuchField/.test(b?.error?.message ?? ''), `message ${b?.error?.message}`);
  return `400 ${b.error.message}`;
});

await check('fno.query.filter-functions', async () => {
  const b = await json(await get("/data/CustomersV3?cross-company=true&$top=3&$filter=startswith(CustomerAccount,'DE') and dataAreaId eq 'demf'&$orderby=CustomerAccount desc"), 'startswith');
  must(b.value.length === 3 && b.value.every((x) => x.CustomerAccount.startsWith('DE')), `rows ${b.value.map((x) => x.CustomerAccount)}`);
  return b.value.map((x) => x.CustomerAccount).join(' > ');
});

await check('fno.error.unknown-set', async () => {
  const r = await get('/data/NoSuchEntities');
  const t = await r.text();
  must(r.status === 404, `HTTP ${r.status}`);
  return `404 ${t.slice(0, 80)}`;
});


done();
