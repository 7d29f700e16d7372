//! "Our model": every behaviour of the simulator that no public source shows, in one list. It is
//! served as JSON at `GET /_sim/model`, and `docs/simulator.md`'s section "Our model" holds the same
//! list (a test checks that they agree).

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// (area, behaviour): one entry per behaviour without a public source.
pub const OUR_MODEL: &[(&str, &str)] = &[
    (
        "Routing",
        "A request whose Host (or X-Forwarded-Host) names a scenario resource (`auth.resources`), an Entra ID host or the dual-write gateway is served by that service only; another service's path there answers that host's 404 without asking for a token. Any other host (`127.0.0.1:PORT`) is routed by path. `/_sim/` and `/_blob/` answer on every host.",
    ),
    (
        "Not found",
        "A path a service does not serve answers 404 in its own shape: Dataverse `0x80060888` \"Resource not found for the segment '<segment>'.\" (also outside `/api/data/`), F&O `{\"error\":{\"code\":\"\",\"message\":\"No HTTP resource was found that matches the request URI '<path>'.\"}}` (also for an unknown entity set), Entra `{\"error\":\"not_found\",\"error_description\"}`, any other path `NotFound`.",
    ),
    (
        "Not modelled",
        "A call the real service would serve but the simulator does not model (among them the SOAP Organization service under `/XRMServices/`, whose 401 challenge is served, and `RetrieveCurrentOrganization`) answers 501 with the service's error shape (Dataverse code `0x80060888`, F&O code `\"\"`) and a message ending \"not modelled by the simulator\"; a method no route takes answers 405 in the same shape.",
    ),
    (
        "Links",
        "`@odata.context`, `@odata.nextLink`, `OData-EntityId`, `Location`, DMF blob URLs and discovery endpoints are built from `X-Forwarded-Proto` + `X-Forwarded-Host`, else the `Host` header over plain http, else the listen address.",
    ),
    (
        "Time",
        "The world advances lazily: every request first runs initial syncs, queue replays, live writes, lagged propagation and DMF jobs up to the current simulated time. Results depend only on the scenario and the times of the requests.",
    ),
    (
        "Rows",
        "Generated rows are (company, number, revision); values are computed from the seed when a response needs them. Keys are `<prefix>-<number:06>`, numbered across companies, so they are unique per set. The legal entities (an F&O set keyed by `DataArea`, e.g. `Companies`) are the scenario's companies, in order, lower case. A Dataverse row's `createdon` is 2024-01-01T00:00:00Z plus its row number in seconds: rows are numbered in the order they were created, so `createdon` orders them by creation, though not at the simulated time of it.",
    ),
    (
        "Property types",
        "A property's type follows its generator: `amount` decimal, `int` integer, `date` a date, `bool` boolean, `noyes` the F&O `NoYes` enum (`\"Yes\"`/`\"No\"`), `enum:Name:A|B` the F&O enumeration `Name` (values are the member names; member values are their positions from 0, in `$metadata` and `PublicEnumerations`; the metadata service's property `DataType` is `Enum`, its `TypeName` `Microsoft.Dynamics.DataEntities.Name`), `choice:` a Dataverse picklist; every other generator (`enum:A|B` too), keys, `dataAreaId` and a text company column are strings; a company lookup is a GUID.",
    ),
    (
        "Value maps",
        "A scenario map's `values` (by source field: F&O member → Dataverse option value) is its dual-write value map: a copied or live-synced enum value becomes its option; a member the map does not list syncs as an empty choice (the real record outcome is not published). A map's target column declared `choice:` on the Dataverse table keeps that type.",
    ),
    (
        "Automation",
        "Every estate has the tables `sdkmessages`, `sdkmessagefilters`, `sdkmessageprocessingsteps` and `workflows`, empty unless the scenario declares `dataverse.plugin_steps` / `dataverse.flows`; a step's or flow's id is derived from the seed and its name; `statecode`/`statuscode` are stored as written (any pair is accepted). A flow's `clientdata` holds only its Dataverse trigger. While a plug-in step with `throws_on_dual_write` is enabled (`statecode` 0), an initial sync into its table fails at the next row with `plugin_exception` \"Plug-in step '<name>' threw an exception on Create of <table>: the record was not written.\", and every create live sync carries into the table fails with the same message and is not written: a failed system job in `asyncoperations` and a `plugintracelogs` row (the error sources the console reads), until the step is disabled.",
    ),
    (
        "Company striping",
        "A company-specific Dataverse table is striped by a lookup to `cdm_company` (`company_lookup`, default `msdyn_company` for a map's target whose source is per company), read as `_msdyn_company_value`; the `cdm_companyid` it holds is derived from the company code alone. When a scenario stripes a table and declares no `cdm_companies`, that set is added with one row per company (`cdm_companyid`, `cdm_companycode`, `cdm_name`); a declared `cdm_companies` row whose `cdm_companycode` is a scenario company has that company's id. A GUID column compared with a string that is not a GUID (`cdm_companyid eq 'USMF'`) is 400 `0x80060888` \"A binary operator with incompatible types was detected. Found operand types 'Edm.Guid' and 'Edm.String' for operator kind 'Equal'.\"",
    ),
    (
        "Map filters",
        "A scenario map's `filter` (an OData `$filter` on the F&O source) decides which rows its initial sync (and `preloaded`) copies; live changes are propagated without it.",
    ),
    (
        "Comparisons",
        "`$filter` and FetchXML string equality and ordering are case-insensitive (the services' default SQL collation); a comparison with null is false except `eq null`/`ne null`.",
    ),
    (
        "System columns",
        "Every Dataverse row has `statecode` 0 and `statuscode` 1 (formatted value `Active`) unless a write set them; a lookup is null unless a write bound it with `@odata.bind`.",
    ),
    (
        "Query options",
        "An unknown system query option (`$x`) is 400; on Dataverse also any other unknown parameter, with code `0x80060888` and \"The query parameter <name> is not supported\"; F&O ignores custom options without `$`. `$apply`, `$search`, `$compute`, `$format`, `$levels`, parameter aliases in `$filter`, lambda operators, arithmetic and the `Microsoft.Dynamics.CRM.*` query functions are 501.",
    ),
    (
        "Unknown properties",
        "A property the entity does not have in `$select`, `$filter`, `$orderby`, `$expand` or a key predicate is 400 \"Could not find a property named '<x>' on type '<type>'.\" (Dataverse `0x80060888`); in a create or update body 400 \"The property '<x>' does not exist on type '<type>'. ...\".",
    ),
    (
        "Expand",
        "Dataverse `$expand` is modelled for the lookups the scenario declares (`lookups:`), with `$select` only inside; F&O has no navigation properties.",
    ),
    (
        "Tokens",
        "The secret is read from the form only (Basic auth is not modelled). App-only tokens (client secret, certificate or federated assertion, managed identity) are opaque strings prefixed `sim.`, not JWTs; a user's token (device code, refresh, `/_sim/users/token`) is a JWT with `oid`, `upn`, `preferred_username`, `tid`, `name`, `groups`, `scp` whose signature is not a real one (`kid: sim-unsigned`). The audience is the scope minus `/.default` without a trailing slash. An app-only scope naming none of the scenario's resources is 400 `invalid_resource` AADSTS500011; a scope without `/.default` or with a space is 400 `invalid_scope` AADSTS70011, and so is a delegated scope naming no resource of the scenario. Refresh tokens are `simrt.` + 40 hex and rotate on use; device codes `simdc.` + 40 hex.",
    ),
    (
        "Client assertions",
        "For a declared principal, checked in this order: shape; the `x5t#S256` (or `x5t`) names a registered certificate (else 401 `invalid_client` AADSTS700027 \"key was not found\"); the PS256/RS256 signature verifies (else AADSTS700027 \"did not match\"); the key credential has not expired (else AADSTS700027 \"The key used is expired\"); `aud` is this token endpoint as called, http or https (else 401 AADSTS50012, the historical code: the current one is not published); `exp`/`nbf` hold on Entra's clock (`clock_skew`) with 5 minutes of leeway (else 401 AADSTS700024; the leeway is ours); `iss` = `sub` = client id (else AADSTS700021). A federated assertion (no thumbprint) must match a federated credential's `iss`/`sub` with `aud` `api://AzureADTokenExchange` (else 400 `invalid_request` AADSTS70021); its signature is not checked (the simulator holds no issuer's keys).",
    ),
    (
        "Device flow",
        "Only a principal with `public_client: true` may ask for a device code (a confidential one gets 400 `invalid_client` AADSTS7000218 there). A poll sooner than `interval` after the previous one gets `slow_down` (Entra does not document it); a declined code `authorization_declined` with no AADSTS number (none is published); an expired one `expired_token` AADSTS70020 (as observed; the doc table says 70019); a redeemed code `invalid_grant` AADSTS54005; an unknown refresh token `invalid_grant` AADSTS70000.",
    ),
    (
        "Managed identity",
        "With no id the system-assigned identity answers, else the only user-assigned one; a wrong App Service header gets 401 `unauthorized` (the real answer is not published).",
    ),
    (
        "Tenants",
        "With no `auth.tenants` every tenant exists, its GUID the one named or (for a domain name) one derived from it. The home tenant is the first declared, else `11111111-2222-4333-8444-555555555555`: it is the tenant of the Dataverse 401 challenge and the `tid` of a user token whose request named no tenant (`common`, `organizations`, the `az` stand-in); a request naming a tenant gets that tenant's GUID as `tid`. The scenario holds one directory: its principals, users and managed identities exist in every declared tenant. An unknown tenant is 400 `invalid_request` AADSTS90002 (the `error` value has no public source).",
    ),
    (
        "Entra discovery",
        "The discovery documents carry the fields of Microsoft's recorded document with endpoints on the host called; `jwks_uri`, `authorize`, `logout` and `kerberos` are listed but not served. Instance discovery answers `invalid_instance` AADSTS50049 for an authority host that is neither Entra's nor the one called, and lists the simulator's own host as an instance when called on it.",
    ),
    (
        "Dataverse challenge",
        "The 401 `WWW-Authenticate` names `https://login.microsoftonline.com` as the authority when the request came through a real host name, else the simulator's own address; `error=\"invalid_token\"` is added when a token was sent.",
    ),
    (
        "F&O next link",
        "`<base>/data/<Set>?<same options>&$skip=<n>`; clients must follow it verbatim. `Prefer: odata.maxpagesize` may lower the page size but not raise it above `fno.page_size`.",
    ),
    (
        "F&O 429",
        "`{\"error\":{\"code\":\"TooManyRequests\",\"message\":\"Too many requests\"}}`; 503 `ServiceUnavailable` for injected server errors.",
    ),
    (
        "Dataverse paging",
        "With `$top` and no `odata.maxpagesize` no paging is applied. `$skip` is 400 `0x80060888` (the Web API pages by `$skiptoken` only). The `$skiptoken` and the FetchXML paging cookie have Dataverse's format; the next page starts after the row whose primary id is the cookie's `last`, and by page number when that row is gone. `/$count` is capped like `$count=true`.",
    ),
    (
        "Dataverse errors",
        "A missing record is 404 `0x80040217` \"<entity> With Id = <id> Does Not Exist\", by alternate key \"A record with the specified key values does not exist in <entity> entity\"; a second record with the same alternate-key value is 412 `0x80060892`; a body that is not JSON is 400 `0x80060888`.",
    ),
    (
        "F&O errors",
        "A missing record is 404 with code `\"\"` and \"Resource not found for the segment '<Set>(<key>)'.\"; a create whose key already exists is 400 \"A record with key <key> already exists in <Set>.\"; a body that is not a JSON object is 400.",
    ),
    (
        "FetchXML",
        "Rows with attributes, `all-attributes`, orders, nested filters and the common condition operators, `count` (1 to 5,000), `page`, `paging-cookie`, `top`; `link-entity`, aggregates other than one `count`/`countcolumn`, grouping and the date, user and hierarchy operators are 501. Above the aggregate limit: 400 `0x8004E023` \"AggregateQueryRecordLimit exceeded...\"; an entity that is not the set's, or `count` out of range, is 400 `0x80060888`.",
    ),
    (
        "Writes",
        "A Web API or F&O update changes the row where it is and is not carried through dual-write maps. UpdateMultiple answers 204. CreateMultiple checks every target before writing any. PATCH on a record that does not exist creates it unless `If-Match: *`.",
    ),
    (
        "Batch",
        "A Dataverse batch without `Prefer: odata.continue-on-error` answers 400 with the failing part only; an F&O batch stops after its first failing part and answers 200 with the parts so far. A failed change set puts the tables back as they were before it. A JSON-format batch is 501. Responses are `multipart/mixed; boundary=batchresponse_<id>` with `changesetresponse_<id>` change sets.",
    ),
    (
        "Dataverse metadata",
        "`EntityDefinitions`, `Attributes` (with cast segments and `$expand=OptionSet`) and `Keys` for every scenario table: `SchemaName` is the logical name with its first letter upper-cased, display names are derived from logical names, `MetadataId`s are stable GUIDs from the seed, a key's `LogicalName` is `<entity>_<key column>`, `PrimaryNameAttribute` is the scenario's `primary_name`, else `name`, else the first string column ending in `name`. Properties not in these documents are 501. The CSDL's container is `System` and lists entity types and sets only. Only API version v9.2 is served; `RetrieveVersion` answers `9.2.0.0`. Ours: the `in` operator in a metadata `$filter` is 400 `0x80060888` with our message (metadata queries take `eq`, `ne`, `not`, `and`, `or`; the real answer to `in` is not public); an `or` of `EntitySetName eq`/`LogicalName eq` returns the tables it names.",
    ),
    (
        "F&O metadata",
        "An entity type is the set's name made singular (`CustomersV3` → `CustomerV3`) unless the scenario names it (`entity_type`); its key is `dataAreaId` then the key field. The metadata service's `Name` is `<EntityType>Entity`, `LabelId` null, `EntityCategory` `Master`; the CSDL lists no actions and the service document no DMF set; other `/Metadata/` paths are 501.",
    ),
    (
        "WhoAmI",
        "The user, business unit and organisation ids are derived from the seed.",
    ),
    (
        "RetrieveTotalRecordCount",
        "A snapshot taken at start and refreshed every `snapshot_every` (simulated); an unknown logical name is 400 `0x80040217`.",
    ),
    (
        "Service protection",
        "Counted per access token (the \"user\") over a real-time sliding window; the three 429s carry codes `0x80072322` (requests), `0x80072321` (execution time), `0x80072326` (concurrent) and `Retry-After`. Successful responses carry `x-ms-ratelimit-burst-remaining-xrm-requests`.",
    ),
    (
        "DMF",
        "A job is `NotRun` for `queued`, `Executing` for `duration`, then its `outcome`; an import whose `packageUrl` names no uploaded blob ends `Failed`; unknown ids are `Unknown`. A repeated `ImportFromPackage`/`ExportToPackage` with the same `executionId` returns it without running again. On Succeeded/PartiallySucceeded an import loads its entities' rows minus `target_errors` and the rows flow through Running maps. `GetExecutionErrors` is a JSON string holding an array of `{\"entityName\",\"errorMessage\",\"recordKey\",\"stage\"}`. `GetImportTargetErrorKeysFileUrl` is `\"\"` until `error_file_delay` after the Generate call. The exported package holds a `Manifest.xml` listing the group's entities (unit 1, level 1, sequences 1, 2, ...), the header exported packages carry and a one-row CSV per entity; a group without entities exports an empty valid zip.",
    ),
    (
        "Table creation",
        "`POST EntityDefinitions` creates a table from `SchemaName` and exactly one primary-name `StringAttributeMetadata` (both required, as Microsoft Learn's \"Create and update table definitions\" says; otherwise 400 `0x80060888`), answering 204 with `OData-EntityId: <base>/EntityDefinitions(<MetadataId>)`; `POST EntityDefinitions(LogicalName='t')/Attributes` adds a String, Memo, Integer or DateTime column (other types 501). Ours: the logical name is the schema name in lower case, the entity set is the logical name plus `s`, the primary id column `<logical>id`; a name already taken is 400 `0x80047013`; labels, ownership and the other properties are accepted and not kept; the new table has no rows, no alternate keys and no lookups.",
    ),
    (
        "DMF packages",
        "An import reads the uploaded package's `Manifest.xml` as `src/util/dmf_package.rs` does (the element names public package-building scripts use, `DataManagementPackageManifest` → `PackageEntityList` → `DataManagementPackageEntityData` → `EntityName`/`ExecutionUnit`/`LevelInExecutionUnit`/`SequenceInLevel`; no Microsoft page publishes the schema; the `Version` element is the seed article's build convention). A package that cannot be read ends the job `Failed` like a missing one. The entities run in the manifest's import order, each with the definition group's entity of that name (rows, errors) when the scenario declares one, else loading nothing into the F&O set of that name; the group's entities the package does not name run after them. An entity whose scenario map `depends_on` a map whose F&O set has no rows at that moment (none before the import, none loaded by an earlier entity) fails and loads nothing: `GetExecutionErrors` answers `{\"entityName\": <entity>, \"errorMessage\": \"The value in a field of '<entity>' is not found in the related table '<set>': ...\", \"stage\": \"Target\"}` and `GenerateImportTargetErrorKeysFile` is true for it; the job then ends `PartiallySucceeded` (`Failed` when no entity loaded) instead of `Succeeded`.",
    ),
    (
        "Data projects",
        "`GET /data/DataManagementDefinitionGroups` lists the scenario's `dmf.definition_groups` only, each with `Name`, `Description` (empty) and `ProjectCategory` (`Project`), with `$filter $select $top $skip` and a `('<Name>')` key; a group the scenario does not declare is not listed, though a DMF action naming it still runs with `default_job`.",
    ),
    (
        "Request log",
        "`GET /_sim/requests` lists the method and path (with the query of F&O and Dataverse requests, as sent; no header or body, and never a token endpoint's query) of the last 20,000 requests of every service, `/_sim/` included, oldest first.",
    ),
    (
        "Blob storage",
        "`PUT` needs `x-ms-blob-type: BlockBlob` (else 400 `MissingRequiredHeader`) and answers 201; a bad or expired SAS (one real hour) is 403 `AuthenticationFailed`.",
    ),
    (
        "Gateway",
        "The paths, bodies, codes and states follow Microsoft's automation tool (d365-api.md §5a); what the tool does not show is ours: the transitions of the section on the gateway above; an invalid transition is a synchronous 409 `InvalidTransition`, an unknown or non-string action code, a missing `details` list, a `cid` other than the environment's or a `conflictResolution.master` other than `AX`/`CRM` a 400 `BadRequest`, an unknown `pid`/`tid` a 404, all `{\"error\":{\"code\",\"message\"}}`; a request naming several maps is refused whole when one transition is invalid; `master` is checked but initial sync always copies F&O → Dataverse; `dualWriteSkipCatchUpSyncParameters` is accepted and ignored (the queue is always replayed); `cid`, `tid` and `pid` are GUIDs derived from the seed, `cname` is the first label of the F&O host; `actions` lists the codes the state allows; `template` is version 1.0.0.0 by `Microsoft`; maps are listed whatever the `targetType`/`cid` query says.",
    ),
    (
        "Gateway requests",
        "`POST Start` answers 200 `{\"requestId\"}` (a fresh GUID). A request is Waiting (`\"1\"`) for `dual_write.request_delay` (simulated), then Completed (`\"2\"`); a start with initial sync (or `\"8\"`) stays Waiting until its pass ends, then Completed, or Error (`\"3\"`) with the failure's message in `errorMessage`; a start without initial sync whose `depends_on` maps are not Running is Error at once. `createdOn` is the wall-clock time the request arrived, `modifiedOn` that time plus the simulated time to its last change divided by `time_scale`, both RFC 3339 UTC with milliseconds; `errorUri` is null. `lastRequests` holds a map's last 10 requests, newest first, and `lastRequest` the newest. `GET Status/{id}` lists the maps the request named; an unknown id is 404. `GET /_sim/gateway` lists every accepted `POST Start` body with its request.",
    ),
    (
        "Map states",
        "A paused map's queue is played back after resume (`\"6\"`) in CatchUp, shown as `\"3\"` (the tool's enum names 3 `CatchUp` since its commit of 2025-03-13; the reference says 3 is not in the enum), then Running `\"4\"`. A stop during an initial sync ends its request in Error. `\"8\"` (the tool sends it without `pid` to a map with no project) runs an initial-sync pass like a start with initial sync, from NotRunning/Stopped/None.",
    ),
    (
        "Initial sync",
        "Copies source rows in table order at `rate`; `fail_at_row` fails the first pass only. There is no \"continue from the failed row\" (the tool has none): every pass starts at row 1 and upserts: a row this map copied before (or preloaded) counts as updated, a row on the target that it did not copy is a `duplicate_key` error (the pass then ends in Error). A sync started while a `depends_on` map is not Running fails at row 1 with `missing_lookup`. A sync into a Dataverse table with a lookup (`lookups:`) to a table that holds no rows (no map has loaded it; lookups to `cdm_companies` are the company striping's) fails at row 1 with `missing_lookup` \"Lookup for '<lookup>' could not be resolved: <set> has no record to point at (no map has loaded it).\", and every create live sync carries into it fails with that message (a failed system job), whatever the row's own value. Rows created in the source during the sync are copied at its end.",
    ),
    (
        "Initial-sync details",
        "`GET api/ProjectExecutionWithCompanies/{pid}` answers `{\"projectName\",\"projectExecutionResponses\":[...]}` (the shape the tool deserialises) with one element per legal entity the last pass read (`legalEntityId` empty for a shared table): `executionStatus` `Executing`, `Succeeded` or `Failed` (any error), `upsertCount` inserted + updated, `errorCount`, `initialSyncRequestId` the request that started the pass, one task named after the map with one leg: `exportRecordCount` rows read, `exportRecordErrorCount` 0, `importRecordsInsertedCount`, `importRecordsUpdatedCount`, `importRecordsErrorCount`, `importErrors[{recordId (the source key), sourceField (the source key field), errorMessage}]` (the first 100), `exportErrors` empty, `importErrorUri` null. An unknown pid is 404.",
    ),
    (
        "Error sources",
        "No public API serves the dual-write error queue, so the simulator has none: the debug-mode table `DualWriteErrorLog` is no OData entity set, and a request for it is 404 like any unknown entity set. Failures go to an internal store and are served through the sources that exist. An initial-sync row failure is a DMF execution error of the map's DWM execution (the map's `execution_id`, default `DWM-<map>`): `GetExecutionErrors` for that id answers `{\"entityName\": <target set>, \"errorMessage\", \"recordKey\", \"stage\": \"Target\"}` per failed row, and none once a later initial-sync pass of the map completes (the new pass replaced the failed execution's errors). Every `live_fail_every`th create a map carries into Dataverse fails and is not written: it is an `asyncoperations` row (`statuscode` 31, `statecode` 3, `operationtype` 1, `primaryentitytype` the target's logical name, `message`/`friendlymessage`, `createdon`/`completedon` the simulated time, `_regardingobjectid_value` null), never resolved; with `live_fail_plugin` also a `plugintracelogs` row (`typename`, `messagename` `Create`, `primaryentity`, `exceptiondetails`, `messageblock`, `createdon`, `correlationid` = the job's id). Both tables exist, empty, in every scenario; `dataverse.forbidden` lists sets answered 403 `0x80040220`.",
    ),
    (
        "Live changes",
        "On a Running map a change reaches the other side after the lag; on a Paused map it is queued until the queue would exceed `queue_max_bytes` or the pause is older than `queue_max_age`, after which changes are blocked; other states do not propagate. Dataverse rows carry the company's `cdm_companyid` in the company lookup (or the code, upper case, in a text company column); F&O rows carry the code lower case in `dataAreaId`.",
    ),
    (
        "Faults",
        "Rules are tried in order; the first that fires wins. Draws depend on (seed, rule, number of requests the rule matched). A reset is a body that fails before its first byte. `/_sim/` is never faulted.",
    ),
    (
        "Lake export",
        "With a scenario `lake:`, the simulator writes an Azure Synapse Link incremental-update export of its tables. The exporter observes the tables at most every tenth of `interval` (simulated) and on every lake request; each change observed goes into the folder being written then, the one of `now - lag`; a folder closes when the exporter's clock passes its end, and intervals without changes still get a folder (`model.json` only). Folder names are `yyyy-MM-ddTHH.mm.ssZ`; `SinkCreatedOn`/`SinkModifiedOn` are RFC 3339 with milliseconds; `IsDelete` is `True` on a delete and empty otherwise; a partition is named by the year of the row's first export; values are written as the service's JSON gives them (null as an empty field), RFC 4180 quoted where needed. F&O sets are exported as `mserp_<set in lower case>` with columns `mserp_<field in lower case>`, Dataverse sets as their logical name with a lookup `_x_value` as `x`; an F&O row's `Id` is a GUID derived from the set, company and row. `model.json` lists every exported table with `dataType` `guid`, `dateTime`, `int64`, `boolean`, `decimal` or `string` (from the first value seen) and partition locations on `https://<account>.dfs.core.windows.net/`. A stopped export (`stop_at`, or `POST /_sim/lake {\"stopped\": true}`) closes no folder and exports nothing; resumed, it exports what it missed into the folder then open. A schema change (`schema_changes`: at a simulated time, or `at` after the first import of its `after_import` DMF definition group loads its rows; or `add_column`) adds the column to the service's rows and to the export at once.",
    ),
    (
        "Lake storage",
        "The export's account is served path-style under `/_storage/<account>/<container>` (as the storage emulator addresses accounts), List Blobs and Get Blob only (anything else on a container is 501 `NotImplemented`). A request needs a Bearer token for `https://storage.azure.com` and `x-ms-version` 2017-11-09 or later (else 400 `InvalidHeaderValue`); no token is 404 `ResourceNotFound`, a bad one 401 `InvalidAuthenticationInfo`; an unknown account is 404 `ResourceNotFound`. Blobs list in name order, `NextMarker` is the next name, `Etag` a hash of the content; `Content-Type` is `application/json` for `model.json`, `text/csv` for partitions, else `application/octet-stream`; `Changelog/changelog.info` holds the open folder's name and nothing else.",
    ),
    (
        "Lake pipelines",
        "Databricks errors are `{\"error_code\",\"message\"}`: an unknown pipeline or update 404 `RESOURCE_DOES_NOT_EXIST`, an update started while one is active 409 `RESOURCE_CONFLICT`, a missing or bad token 401 `UNAUTHENTICATED` (Entra tokens for `2ff814a6-3304-4ab8-85cb-cd0e6f879c1d`, or a scenario `databricks.tokens` entry). An update is QUEUED, INITIALIZING, RESETTING (full refresh), SETTING_UP_TABLES, RUNNING by its share of `update_duration`, then COMPLETED or FAILED; it ingests every folder closed by its end into one row per `Id` (SCD type 1, deletes applied). A table whose `model.json` attributes differ from what was ingested, and which is not in `full_refresh_selection`, fails the update naming the table; `fail_updates` fails the next updates. `latest_updates[].creation_time` is RFC 3339, `update.creation_time` epoch ms; a failed update carries `update.error.message`. `schedule` starts an incremental update every interval when none is active.",
    ),
    (
        "Lake statements",
        "The SQL warehouse runs the statement it is sent on an in-memory SQLite database holding every ingested table (columns as text, empty values null) with Spark's `sha2` and `string` registered; SQL SQLite cannot run is FAILED with SQLite's message, `error_code` `BAD_REQUEST` and `sql_state` `42000`. A statement is PENDING for the first quarter of `statement_duration`, RUNNING to its end, then SUCCEEDED or FAILED; CLOSED `result_ttl` after it succeeded; CANCELED when cancelled before its end. The submit answers at once whatever `wait_timeout` says; only `INLINE` with `JSON_ARRAY` is modelled (else 501), in one chunk; every table is visible whatever `catalog` and `schema` say; a column's `type_name` is `LONG`, `DOUBLE` or `STRING` from SQLite's value in the first row.",
    ),
    (
        "Key Vault",
        "Every simulated vault (the `keyvault` environments, served under `/_keyvault` in `--sim` mode) holds one EC P-256 key, `checkpoint-key`, derived from the scenario's seed, in one version whose id is 32 hex digits; `POST /_sim/keyvault {\"create\": NAME}` adds a key or a version. `GET keys/NAME[/VERSION]` answers `{\"key\": {\"kid\", \"kty\": \"EC\", \"crv\": \"P-256\", \"x\", \"y\", \"key_ops\": [\"sign\", \"verify\"]}, \"attributes\"}` with `kid` built from the request's origin; `sign` takes ES256 only (another `alg`, a `value` that is not a base64url 32-byte digest, a body that is not JSON or an api-version other than 7.4, 7.5, 7.6 or 2025-07-01 is 400 `BadParameter`); an unknown key or version is 404 `KeyNotFound`. A missing token is 401 `Unauthorized` (`AKV10000`) and a token that is not for `https://vault.azure.net` or has expired 401 (`AKV10022`), both with `WWW-Authenticate: Bearer authorization=\"https://login.microsoftonline.com/<tenant>\", resource=\"https://vault.azure.net\"`. `POST /_sim/keyvault {\"fail_sign\": N, \"fail_status\": 403|500, \"sign_delay_ms\": MS, \"reset\": true}` makes the next N sign calls answer 403 `Forbidden` (or 500 `InternalServerError`) or answer late; `GET /_sim/keyvault` lists the keys, the signatures made and the bearer tokens the vault accepted.",
    ),
];

/// `GET /_sim/model`.
pub async fn serve() -> Response {
    let items: Vec<_> = OUR_MODEL
        .iter()
        .map(|(area, behaviour)| json!({"area": area, "behaviour": behaviour}))
        .collect();
    Json(json!({"our_model": items})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `docs/simulator.md`'s "Our model" section is this list, entry for entry.
    #[test]
    fn the_documented_list_is_the_served_list() {
        let doc = include_str!("../../docs/simulator.md");
        let start = doc
            .find("\n## Our model\n")
            .expect("docs/simulator.md has a section ## Our model");
        let section = &doc[start + 1..];
        let end = section[3..].find("\n## ").map_or(section.len(), |i| i + 3);
        let bullets: Vec<&str> = section[..end].lines().filter(|l| l.starts_with("- **")).collect();
        let want: Vec<String> = OUR_MODEL.iter().map(|(a, b)| format!("- **{a}.** {b}")).collect();
        assert_eq!(bullets, want);
    }
}
