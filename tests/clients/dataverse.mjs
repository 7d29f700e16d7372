// dynamics-web-api against the simulator's Dataverse Web API, through the TLS front on the org's
// real host name, with an onTokenRefresh that asks @azure/msal-node, as an app would be written.
// Where the library has no call for something a real client does (the service document, the 401
// challenge, response headers), a plain fetch to the same URL stands in; those checks are named
// `dv.wire.*`.

import { DynamicsWebApi } from 'dynamics-web-api';
import { bypassing, check, done, env, frontMark, frontSince, must, origin, summarise } from './lib/harness.mjs';
import { tokenFor } from './lib/tokens.mjs';

const serverUrl = env('DATAVERSE_URL');
const host = new URL(serverUrl).host;
const api = `${serverUrl}/api/data/v9.2`;
const MIN_ROWS = 5001;

const dwa = new DynamicsWebApi({
  serverUrl,
  dataApi: { version: '9.2' },
  onTokenRefresh: () => tokenFor(serverUrl),
});

const isGuid = (s) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(String(s));

/** Links the service returns must be on the host the client called, over https. */
function onOurHost(link, what) {
  must(link, `${what} missing`);
  must(origin(link) === `https://${host}`, `${what} is ${origin(link)}/..., not https://${host}/... (the host the client called)`);
}

const created = [];

/** Deletes records a check made as soon as it is done with them (row counts later stay exact). */
async function removeNow(...pairs) {
  for (const [collection, key] of pairs) {
    await dwa.deleteRecord({ collection, key });
    const i = created.findIndex((x) => Array.isArray(x) && x[1] === key);
    if (i >= 0) created.splice(i, 1);
  }
}

await check('dv.whoami', async () => {
  const r = await dwa.callFunction('WhoAmI');
  must(isGuid(r.UserId) && isGuid(r.BusinessUnitId) && isGuid(r.OrganizationId), `WhoAmI fields: ${Object.keys(r).join(',')}`);
  return `UserId ${r.UserId}`;
});

// Links in a response must name the host the client called (https://<org>), never the address the
// service listens on behind its front: a client resolves relative work (next pages, the record it
// just created, the metadata) from them.
await check('dv.links.context', async () => {
  const w = await dwa.callFunction('WhoAmI');
  const r = await dwa.retrieveMultiple({ collection: 'accounts', select: ['accountid'], top: 1 });
  onOurHost(w.oDataContext, 'WhoAmI @odata.context');
  onOurHost(r.oDataContext, 'accounts @odata.context');
  return `@odata.context on https://${host}`;
});

await check('dv.query.select-filter-top', async () => {
  const r = await dwa.retrieveMultiple({
    collection: 'accounts',
    select: ['name', 'accountnumber'],
    filter: 'accountnumber ne null',
    top: 3,
  });
  must(Array.isArray(r.value) && r.value.length === 3, `${r.value?.length} rows for $top=3`);
  for (const row of r.value) {
    must(isGuid(row.accountid), 'row without accountid (the primary key is always returned)');
    must(typeof row.accountnumber === 'string', 'row without the selected accountnumber');
    const extra = Object.keys(row).filter((k) => !k.startsWith('@') && !['name', 'accountnumber', 'accountid'].includes(k));
    must(extra.length === 0, `columns not selected came back: ${extra.join(',')}`);
  }
  must(!r.oDataNextLink, '$top answered with a next link');
  return `3 rows, ${r.value.map((x) => x.accountnumber).join(',')}`;
});

await check('dv.query.orderby', async () => {
  const r = await dwa.retrieveMultiple({ collection: 'accounts', select: ['accountnumber'], orderBy: ['accountnumber desc'], top: 2 });
  must(r.value.length === 2, `${r.value.length} rows`);
  must(r.value[0].accountnumber > r.value[1].accountnumber, `not descending: ${r.value.map((x) => x.accountnumber)}`);
  return r.value.map((x) => x.accountnumber).join(' > ');
});

await check('dv.query.startswith', async () => {
  const r = await dwa.retrieveMultiple({ collection: 'accounts', select: ['accountnumber'], filter: "startswith(accountnumber,'US')", top: 5 });
  must(r.value.length > 0 && r.value.every((x) => x.accountnumber.startsWith('US')), `rows: ${r.value.map((x) => x.accountnumber)}`);
  return `${r.value.length} rows`;
});

await check('dv.query.expand', async () => {
  const r = await dwa.retrieveMultiple({
    collection: 'accounts',
    select: ['accountnumber'],
    expand: [{ property: 'primarycontactid', select: ['fullname'] }],
    top: 1,
  });
  must(r.value.length === 1, `${r.value.length} rows`);
  must('primarycontactid' in r.value[0], '$expand=primarycontactid was ignored: no primarycontactid property (null or an object) on the row');
  return 'primarycontactid expanded';
});

await check('dv.query.expand.bound', async () => {
  const contact = await dwa.create({ collection: 'contacts', data: { fullname: 'Harness Contact' } });
  created.push(['contacts', contact]);
  const account = await dwa.create({
    collection: 'accounts',
    data: { name: 'Harness bound', accountnumber: 'HARNESS-0401', 'primarycontactid@odata.bind': `/contacts(${contact})` },
  });
  created.push(['accounts', account]);
  const r = await dwa.retrieve({
    collection: 'accounts',
    key: account,
    select: ['accountnumber', '_primarycontactid_value'],
    expand: [{ property: 'primarycontactid', select: ['fullname'] }],
  });
  must(r._primarycontactid_value === contact, `_primarycontactid_value ${r._primarycontactid_value}`);
  must(r.primarycontactid?.fullname === 'Harness Contact', `primarycontactid ${JSON.stringify(r.primarycontactid)}`);
  await removeNow(['accounts', account], ['contacts', contact]);
  return `account -> contact ${contact}`;
});

await check('dv.error.bind-missing', async () => {
  try {
    await dwa.create({
      collection: 'accounts',
      data: { name: 'Harness bad bind', 'primarycontactid@odata.bind': '/contacts(00000000-0000-0000-0000-00000000beef)' },
    });
  } catch (e) {
    if (!e.status) throw e;
    must(e.status === 404 && e.code === '0x80040217', `HTTP ${e.status} ${e.code}`);
    return `404 ${e.code}`;
  }
  throw new Error('an account bound to a contact that does not exist was created');
});

await check('dv.update', async () => {
  const a = await dwa.create({ collection: 'accounts', data: { name: 'Harness before', accountnumber: 'HARNESS-0501' } });
  created.push(['accounts', a]);
  await dwa.update({ collection: 'accounts', key: a, data: { name: 'Harness after' } });
  const r = await dwa.retrieve({ collection: 'accounts', key: a, select: ['name', 'accountnumber'] });
  must(r.name === 'Harness after' && r.accountnumber === 'HARNESS-0501', `after update: ${JSON.stringify(r)}`);
  await removeNow(['accounts', a]);
  return 'updated in place';
});

await check('dv.query.filter-functions', async () => {
  const r = await dwa.retrieveMultiple({
    collection: 'accounts',
    select: ['accountnumber'],
    filter: "(contains(accountnumber,'-0000') or endswith(accountnumber,'99')) and accountnumber ge 'US' and statecode ne 1",
    top: 5,
  });
  must(r.value.length === 5, `${r.value.length} rows`);
  must(r.value.every((x) => x.accountnumber >= 'US' && (x.accountnumber.includes('-0000') || x.accountnumber.endsWith('99'))), `rows: ${r.value.map((x) => x.accountnumber)}`);
  return r.value.map((x) => x.accountnumber).join(',');
});

await check('dv.query.formatted-values', async () => {
  const r = await dwa.retrieveMultiple({
    collection: 'accounts',
    select: ['statecode', 'industrycode'],
    top: 1,
    includeAnnotations: 'OData.Community.Display.V1.FormattedValue',
  });
  const row = r.value[0];
  must(row['statecode@OData.Community.Display.V1.FormattedValue'] === 'Active', `statecode formatted ${row['statecode@OData.Community.Display.V1.FormattedValue']}`);
  must(typeof row['industrycode@OData.Community.Display.V1.FormattedValue'] === 'string', 'no formatted value for the choice column');
  return `statecode Active, industrycode ${row['industrycode@OData.Community.Display.V1.FormattedValue']}`;
});

// Every Dataverse table has statecode; "active rows only" is the most common filter there is.
await check('dv.query.statecode', async () => {
  const r = await dwa.retrieveMultiple({ collection: 'accounts', select: ['accountnumber', 'statecode'], filter: 'statecode eq 0', top: 3 });
  must(r.value.length === 3, `${r.value.length} active accounts for statecode eq 0`);
  return '3 active accounts';
});

for (const [what, req] of [
  ['select', { select: ['accountnumber', 'nosuchcolumn'] }],
  ['filter', { select: ['accountnumber'], filter: 'nosuchcolumn eq 1' }],
]) {
  await check(`dv.error.unknown-column-${what}`, async () => {
    let r;
    try {
      r = await dwa.retrieveMultiple({ collection: 'accounts', top: 1, ...req });
    } catch (e) {
      if (!e.status) throw e;
      must(e.status === 400, `HTTP ${e.status}`);
      must(e.code === '0x80060888', `code ${e.code} (Dataverse answers 0x80060888 "Could not find a property named 'nosuchcolumn' on type 'Microsoft.Dynamics.CRM.account'")`);
      return `400 ${e.code}`;
    }
    throw new Error(`an unknown column in $${what} answered ${r.value.length} row(s) instead of 400`);
  });
}

await check('dv.error.unknown-option', async () => {
  let r;
  try {
    r = await dwa.retrieveMultiple({ collection: 'accounts', select: ['accountnumber'], top: 1, queryParams: ['$frobnicate=1'] });
  } catch (e) {
    if (!e.status) throw e;
    must(e.status === 400, `HTTP ${e.status}`);
    return `400 ${e.code}`;
  }
  throw new Error(`an unknown system query option ($frobnicate) was silently ignored: ${r.value.length} row(s)`);
});

await check('dv.count', async () => {
  const n = await dwa.count({ collection: 'accounts' });
  must(n === 5000, `accounts/$count = ${n} (Dataverse caps it at 5,000)`);
  return `accounts/$count = ${n}`;
});

await check('dv.count.filtered', async () => {
  const n = await dwa.count({ collection: 'accounts', filter: 'accountnumber ne null' });
  must(n === 5000, `$count=true with $filter = ${n} (capped at 5,000)`);
  return `@odata.count = ${n}`;
});

await check('dv.count.limit-annotation', async () => {
  const r = await dwa.retrieveMultiple({
    collection: 'accounts',
    select: ['accountid'],
    count: true,
    top: 1,
    includeAnnotations: 'Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded',
  });
  must(r.oDataCount === 5000, `@odata.count ${r.oDataCount}`);
  must(r['@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded'] === true, 'totalrecordcountlimitexceeded not true');
  return 'capped at 5,000, limit exceeded flagged';
});

let total = null;
await check('dv.links.nextlink', async () => {
  const r = await dwa.retrieveMultiple({ collection: 'accounts', select: ['accountid'] });
  must(r.value.length === 5000, `first page has ${r.value.length} rows (5,000 without odata.maxpagesize)`);
  onOurHost(r.oDataNextLink, '@odata.nextLink');
  must(/\$skiptoken=/.test(r.oDataNextLink), 'no $skiptoken in the next link');
  return `first page 5,000 rows, next link on https://${host}`;
});

await check('dv.paging.retrieveAll', async () => {
  const { out, direct, wire } = await bypassing(() => dwa.retrieveAll({ collection: 'accounts', select: ['accountid', 'accountnumber'] }));
  total = out.value.length;
  const ids = new Set(out.value.map((x) => x.accountid));
  must(total >= MIN_ROWS, `only ${total} rows: the scenario needs more than 5,000 accounts for this check`);
  must(ids.size === total, `${total - ids.size} duplicate rows across pages`);
  const pages = wire.filter((e) => e.listener === 'https' && e.path.startsWith('/api/data/v9.2/accounts'));
  const plain = wire.filter((e) => e.listener === 'http');
  must(plain.length === 0, `pages requested over plain http: ${summarise(plain)}`);
  must(direct === 0, `${direct} page request(s) went straight to the simulator's loopback address (the next link named it), with the bearer token, bypassing TLS and the real host`);
  must(pages.length >= 2, `only ${pages.length} page request(s) went through https://${host}`);
  return `${total} rows in ${pages.length} pages, every page via https://${host}`;
});

await check('dv.paging.maxpagesize', async () => {
  const r = await dwa.retrieveMultiple({ collection: 'accounts', select: ['accountid'], maxPageSize: 10 });
  must(r.value.length === 10, `${r.value.length} rows for odata.maxpagesize=10`);
  onOurHost(r.oDataNextLink, '@odata.nextLink');
  const next = await dwa.retrieveMultiple({ collection: 'accounts', select: ['accountid'], maxPageSize: 10 }, r.oDataNextLink);
  must(next.value.length === 10, `second page ${next.value.length} rows`);
  must(next.value[0].accountid !== r.value[0].accountid, 'second page repeats the first');
  return 'two pages of 10';
});

let id = null;
let entityId = null;
await check('dv.create', async () => {
  const mark = frontMark();
  id = await dwa.create({ collection: 'accounts', data: { name: 'Client harness probe', accountnumber: 'HARNESS-0001' } });
  must(isGuid(id), `create returned ${JSON.stringify(id)}, not the new id`);
  created.push(id);
  const post = frontSince(mark).find((e) => e.method === 'POST');
  must(post && post.status === 204, `POST answered ${post?.status}`);
  entityId = post.entityId;
  return `created ${id}`;
});

await check('dv.links.entity-id', async () => {
  must(id, 'nothing created');
  must(entityId, 'the create answered no OData-EntityId header');
  onOurHost(entityId, 'OData-EntityId');
  must(entityId.endsWith(`/api/data/v9.2/accounts(${id})`), `OData-EntityId ${entityId}`);
  return entityId;
});

await check('dv.create.representation', async () => {
  const r = await dwa.create({
    collection: 'accounts',
    data: { name: 'Client harness probe 2', accountnumber: 'HARNESS-0002' },
    returnRepresentation: true,
    select: ['accountid', 'name'],
  });
  must(isGuid(r.accountid), 'no accountid in the representation');
  created.push(r.accountid);
  must(!('accountnumber' in r), '$select ignored on the returned representation');
  return `201 with ${r.accountid}`;
});

await check('dv.retrieve', async () => {
  must(id, 'nothing created');
  const r = await dwa.retrieve({ collection: 'accounts', key: id, select: ['name', 'accountnumber'] });
  must(r.accountid === id, `accountid ${r.accountid}`);
  must(r.name === 'Client harness probe', `name ${r.name}`);
  return 'read back';
});

await check('dv.retrieve.alternate-key', async () => {
  const r = await dwa.retrieve({ collection: 'accounts', key: "accountnumber='HARNESS-0001'", select: ['accountnumber'] });
  must(r.accountnumber === 'HARNESS-0001', `accountnumber ${r.accountnumber}`);
  return 'read by accountnumber';
});

await check('dv.delete', async () => {
  must(created.length, 'nothing created');
  for (const x of created.splice(0)) {
    const [collection, key] = Array.isArray(x) ? x : ['accounts', x];
    await dwa.deleteRecord({ collection, key });
  }
  return 'deleted';
});

await check('dv.error.not-found', async () => {
  try {
    await dwa.retrieve({ collection: 'accounts', key: '00000000-0000-0000-0000-00000000beef' });
  } catch (e) {
    if (!e.status) throw e;
    must(e.status === 404, `HTTP ${e.status}`);
    must(e.code === '0x80040217', `code ${e.code} (Dataverse answers 0x80040217 "account With Id = ... Does Not Exist")`);
    return `404 ${e.code}`;
  }
  throw new Error('a record that does not exist was returned');
});

await check('dv.createMultiple', async () => {
  const r = await dwa.callAction({
    collection: 'accounts',
    actionName: 'Microsoft.Dynamics.CRM.CreateMultiple',
    action: {
      Targets: [
        { '@odata.type': 'Microsoft.Dynamics.CRM.account', name: 'Harness multi 1', accountnumber: 'HARNESS-0101' },
        { '@odata.type': 'Microsoft.Dynamics.CRM.account', name: 'Harness multi 2', accountnumber: 'HARNESS-0102' },
      ],
    },
  });
  must(Array.isArray(r?.Ids) && r.Ids.length === 2 && r.Ids.every(isGuid), `answer ${JSON.stringify(r)?.slice(0, 200)}`);
  for (const x of r.Ids) await dwa.deleteRecord({ collection: 'accounts', key: x });
  return 'created 2, deleted 2';
});

// The paging-cookie example of Microsoft's "Page results using FetchXml" asks for both annotations.
const FETCH_ANN = 'Microsoft.Dynamics.CRM.fetchxmlpagingcookie,Microsoft.Dynamics.CRM.morerecords';
const FETCH = (count) =>
  `<fetch count="${count}"><entity name="account"><attribute name="accountnumber"/><attribute name="accountid"/><order attribute="accountnumber"/></entity></fetch>`;

await check('dv.fetchxml.page', async () => {
  const r = await dwa.fetch({
    collection: 'accounts',
    fetchXml: FETCH(50),
    pageNumber: 1,
    includeAnnotations: FETCH_ANN,
  });
  must(Array.isArray(r.value) && r.value.length === 50, `${r.value?.length} rows for count=50`);
  must(r.value.every((x) => typeof x.accountnumber === 'string'), 'rows without accountnumber');
  must(r.PagingInfo && r.PagingInfo.cookie, 'no paging cookie (@Microsoft.Dynamics.CRM.fetchxmlpagingcookie)');
  must(r['@Microsoft.Dynamics.CRM.morerecords'] === true, 'no @Microsoft.Dynamics.CRM.morerecords=true');
  const p2 = await dwa.fetch({
    collection: 'accounts',
    fetchXml: FETCH(50),
    pageNumber: r.PagingInfo.nextPage,
    pagingCookie: r.PagingInfo.cookie,
    includeAnnotations: FETCH_ANN,
  });
  must(p2.value.length === 50 && p2.value[0].accountnumber > r.value[49].accountnumber, 'page 2 does not follow page 1');
  return `page 1 ${r.value[0].accountnumber}..${r.value[49].accountnumber}, page 2 from ${p2.value[0].accountnumber}`;
});

await check('dv.fetchxml.all', async () => {
  const r = await dwa.fetchAll({
    collection: 'accounts',
    fetchXml: FETCH(5000),
    includeAnnotations: 'Microsoft.Dynamics.CRM.fetchxmlpagingcookie',
  });
  must(r.value.length >= MIN_ROWS, `${r.value.length} rows`);
  must(total == null || r.value.length === total, `${r.value.length} rows, retrieveAll saw ${total}`);
  return `${r.value.length} rows`;
});

await check('dv.fetchxml.aggregate', async () => {
  const r = await dwa.fetch({
    collection: 'accounts',
    fetchXml: '<fetch aggregate="true"><entity name="account"><attribute name="accountid" alias="n" aggregate="count"/></entity></fetch>',
  });
  must(r.value.length === 1 && typeof r.value[0].n === 'number', `answer ${JSON.stringify(r.value)?.slice(0, 120)}`);
  return `count ${r.value[0].n}`;
});

await check('dv.batch', async () => {
  dwa.startBatch();
  dwa.retrieveMultiple({ collection: 'accounts', select: ['accountnumber'], top: 2 });
  dwa.callFunction('WhoAmI');
  dwa.create({ collection: 'accounts', data: { name: 'Harness batch', accountnumber: 'HARNESS-0201' } });
  const r = await dwa.executeBatch();
  must(Array.isArray(r) && r.length === 3, `batch answered ${JSON.stringify(r)?.slice(0, 200)}`);
  must(r[0]?.value?.length === 2, 'first GET did not return 2 rows');
  must(isGuid(r[1]?.UserId), 'WhoAmI in the batch returned no UserId');
  must(isGuid(r[2]), `create in the changeset returned ${JSON.stringify(r[2])}`);
  await dwa.deleteRecord({ collection: 'accounts', key: r[2] });
  return 'two GETs and a changeset create';
});

await check('dv.batch.changeset-atomic', async () => {
  dwa.startBatch();
  dwa.create({ collection: 'accounts', data: { name: 'Harness atomic', accountnumber: 'HARNESS-0301' } });
  dwa.create({ collection: 'accounts', data: { name: 'Harness atomic 2', nosuchcolumn: 1 } });
  let r;
  try {
    r = await dwa.executeBatch();
  } catch (e) {
    r = e;
  }
  const errors = Array.isArray(r) ? r : [r];
  must(errors.some((x) => x && x.status === 400), `the batch answered ${JSON.stringify(r)?.slice(0, 200)}`);
  const n = await dwa.count({ collection: 'accounts', filter: "accountnumber eq 'HARNESS-0301'" });
  must(n === 0, `the change set's first create survived its failure (${n} rows)`);
  return 'change set failed as a whole, nothing created';
});

await check('dv.updateMultiple', async () => {
  const made = await dwa.callAction({
    collection: 'accounts',
    actionName: 'Microsoft.Dynamics.CRM.CreateMultiple',
    action: { Targets: [1, 2].map((i) => ({ '@odata.type': 'Microsoft.Dynamics.CRM.account', name: `Harness um ${i}`, accountnumber: `HARNESS-060${i}` })) },
  });
  for (const x of made.Ids) created.push(['accounts', x]);
  await dwa.callAction({
    collection: 'accounts',
    actionName: 'Microsoft.Dynamics.CRM.UpdateMultiple',
    action: { Targets: made.Ids.map((id) => ({ '@odata.type': 'Microsoft.Dynamics.CRM.account', accountid: id, name: 'Harness um done' })) },
  });
  const r = await dwa.retrieveMultiple({ collection: 'accounts', select: ['name'], filter: "startswith(accountnumber,'HARNESS-060')" });
  must(r.value.length === 2 && r.value.every((x) => x.name === 'Harness um done'), `after UpdateMultiple: ${JSON.stringify(r.value)}`);
  return 'created 2, updated 2';
});

await check('dv.metadata.entity', async () => {
  const r = await dwa.retrieveEntity({
    key: "LogicalName='account'",
    select: ['LogicalName', 'EntitySetName', 'PrimaryIdAttribute', 'PrimaryNameAttribute'],
  });
  must(r.EntitySetName === 'accounts', `EntitySetName ${r.EntitySetName}`);
  must(r.PrimaryIdAttribute === 'accountid', `PrimaryIdAttribute ${r.PrimaryIdAttribute}`);
  return `account: set ${r.EntitySetName}, id ${r.PrimaryIdAttribute}, name ${r.PrimaryNameAttribute}`;
});

await check('dv.metadata.keys', async () => {
  const r = await dwa.retrieveEntity({
    key: "LogicalName='account'",
    select: ['LogicalName'],
    expand: [{ property: 'Keys', select: ['LogicalName', 'KeyAttributes'] }],
  });
  must(Array.isArray(r.Keys), 'no Keys');
  must(r.Keys.some((k) => (k.KeyAttributes ?? []).includes('accountnumber')), `keys: ${JSON.stringify(r.Keys)}`);
  return `${r.Keys.length} alternate key(s)`;
});

await check('dv.metadata.attributes', async () => {
  const r = await dwa.retrieveAttributes({ entityKey: "LogicalName='account'", select: ['LogicalName', 'AttributeType'] });
  const names = (r.value ?? []).map((a) => a.LogicalName);
  for (const want of ['accountid', 'accountnumber', 'name']) must(names.includes(want), `no attribute ${want} (got ${names.slice(0, 10)})`);
  return `${names.length} attributes`;
});

await check('dv.metadata.by-set-name', async () => {
  const r = await dwa.retrieveEntities({
    select: ['LogicalName', 'PrimaryIdAttribute', 'PrimaryNameAttribute'],
    filter: "EntitySetName eq 'accounts'",
  });
  must(r.value?.length === 1 && r.value[0].LogicalName === 'account', `answer ${JSON.stringify(r.value)?.slice(0, 160)}`);
  must(r.value[0].PrimaryIdAttribute === 'accountid' && r.value[0].PrimaryNameAttribute === 'name', `ids ${JSON.stringify(r.value[0])}`);
  return 'accounts -> account (accountid, name)';
});

await check('dv.metadata.lookup-targets', async () => {
  const r = await dwa.retrieveAttributes({
    entityKey: "LogicalName='account'",
    castType: 'Microsoft.Dynamics.CRM.LookupAttributeMetadata',
    select: ['LogicalName', 'Targets'],
  });
  const a = (r.value ?? []).find((x) => x.LogicalName === 'primarycontactid');
  must(a, `no primarycontactid among ${JSON.stringify(r.value)?.slice(0, 160)}`);
  must(a['@odata.type'] === '#Microsoft.Dynamics.CRM.LookupAttributeMetadata', `@odata.type ${a['@odata.type']}`);
  must(JSON.stringify(a.Targets) === '["contact"]', `Targets ${JSON.stringify(a.Targets)}`);
  return 'primarycontactid -> contact';
});

await check('dv.metadata.picklist-options', async () => {
  const r = await dwa.retrieveAttributes({
    entityKey: "LogicalName='account'",
    castType: 'Microsoft.Dynamics.CRM.PicklistAttributeMetadata',
    select: ['LogicalName'],
    expand: [{ property: 'OptionSet' }],
  });
  const a = (r.value ?? []).find((x) => x.LogicalName === 'industrycode');
  must(a && Array.isArray(a.OptionSet?.Options), `industrycode ${JSON.stringify(a)?.slice(0, 160)}`);
  const labels = a.OptionSet.Options.map((o) => `${o.Value}=${o.Label?.UserLocalizedLabel?.Label}`);
  must(labels.includes('1=Accounting'), `options ${labels}`);
  return labels.join(', ');
});

await check('dv.metadata.csdl', async () => {
  const x = await dwa.retrieveCsdlMetadata();
  must(typeof x === 'string' && x.includes('<edmx:Edmx') && x.includes('Name="account"'), `answer starts ${String(x).slice(0, 80)}`);
  return `${x.length} bytes of CSDL`;
});

// ---- wire checks: what the library does not surface ------------------------------------------

await check('dv.wire.headers', async () => {
  const token = await tokenFor(serverUrl);
  const r = await fetch(`${api}/accounts?$select=accountid&$top=1`, {
    headers: { authorization: `Bearer ${token}`, accept: 'application/json', 'odata-version': '4.0', 'odata-maxversion': '4.0' },
  });
  must(r.status === 200, `HTTP ${r.status}`);
  const problems = [];
  if (r.headers.get('odata-version') !== '4.0') problems.push(`OData-Version: ${r.headers.get('odata-version')}`);
  if (!/^application\/json;.*odata\.metadata=minimal/.test(r.headers.get('content-type') ?? '')) problems.push(`Content-Type: ${r.headers.get('content-type')}`);
  must(!problems.length, `${problems.join('; ')} (Dataverse answers OData-Version: 4.0 and application/json; odata.metadata=minimal)`);
  return 'OData-Version 4.0, odata.metadata=minimal';
});

await check('dv.wire.service-document', async () => {
  const token = await tokenFor(serverUrl);
  const r = await fetch(`${api}/`, { headers: { authorization: `Bearer ${token}`, accept: 'application/json' } });
  must(r.status === 200, `GET /api/data/v9.2/ answered ${r.status}`);
  const b = await r.json();
  must(Array.isArray(b.value) && b.value.some((x) => x.name === 'accounts'), 'no accounts in the service document');
  onOurHost(b['@odata.context'], '@odata.context');
  return `${b.value.length} sets`;
});

await check('dv.wire.challenge', async () => {
  const r = await fetch(`${api}/`, { headers: { accept: 'application/json' } });
  must(r.status === 401, `no token answered ${r.status}`);
  const w = r.headers.get('www-authenticate') ?? '';
  must(/authorization_uri=https:\/\/login\.microsoftonline\.com\/[^/,\s]+\/oauth2\/authorize/.test(w), `WWW-Authenticate has no authorization_uri: ${w.slice(0, 160)}`);
  must(/resource_id=/.test(w), `WWW-Authenticate has no resource_id: ${w.slice(0, 160)}`);
  return w.slice(0, 160);
});

// Leave nothing behind, whatever failed above.
for (const x of created) {
  const [collection, key] = Array.isArray(x) ? x : ['accounts', x];
  await dwa.deleteRecord({ collection, key }).catch(() => {});
}

done();
