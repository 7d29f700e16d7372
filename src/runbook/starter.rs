//! A first runbook for an estate (`cutover init`): the common dual-write maps in dependency order, waves by
//! dependency level, and every phase of a weekend, commented so a lead learns the defaults by reading them.
//! Pure: the edge asks the questions and writes the file.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

/// One of the common maps of Microsoft's dual-write templates (F&O entity → Dataverse table).
#[derive(Debug, Clone, Copy)]
pub struct CatalogMap {
    pub id: &'static str,
    pub source: &'static str,
    pub target: &'static str,
    pub depends_on: &'static [&'static str],
    /// Company-specific in F&O (striped by legal entity in Dataverse).
    pub per_company: bool,
    /// (F&O key field, Dataverse key column), for parity sampling and row-level checks.
    pub key: Option<(&'static str, &'static str)>,
    pub what: &'static str,
}

/// The maps `init` offers, in a valid dependency order.
pub const CATALOG: &[CatalogMap] = &[
    CatalogMap {
        id: "companies",
        source: "Companies",
        target: "cdm_companies",
        depends_on: &[],
        per_company: false,
        key: None,
        what: "legal entities (every company-specific map needs them)",
    },
    CatalogMap {
        id: "currencies",
        source: "Currencies",
        target: "transactioncurrencies",
        depends_on: &[],
        per_company: false,
        key: None,
        what: "currencies",
    },
    CatalogMap {
        id: "exchange_rates",
        source: "ExchangeRates",
        target: "msdyn_exchangerates",
        depends_on: &["companies", "currencies"],
        per_company: false,
        key: None,
        what: "exchange rates",
    },
    CatalogMap {
        id: "customer_groups",
        source: "CustomerGroups",
        target: "msdyn_customergroups",
        depends_on: &["companies"],
        per_company: true,
        key: None,
        what: "customer groups",
    },
    CatalogMap {
        id: "vendor_groups",
        source: "VendorGroups",
        target: "msdyn_vendorgroups",
        depends_on: &["companies"],
        per_company: true,
        key: None,
        what: "vendor groups",
    },
    CatalogMap {
        id: "customers",
        source: "CustomersV3",
        target: "accounts",
        depends_on: &["companies", "currencies", "customer_groups"],
        per_company: true,
        key: Some(("CustomerAccount", "accountnumber")),
        what: "customers (organisations; the template's filter leaves persons out)",
    },
    CatalogMap {
        id: "vendors",
        source: "VendorsV2",
        target: "msdyn_vendors",
        depends_on: &["companies", "currencies", "vendor_groups"],
        per_company: true,
        key: Some(("VendorAccountNumber", "msdyn_vendoraccountnumber")),
        what: "vendors",
    },
    CatalogMap {
        id: "products",
        source: "ProductsV2",
        target: "products",
        depends_on: &["companies"],
        per_company: false,
        key: Some(("ProductNumber", "productnumber")),
        what: "shared products",
    },
    CatalogMap {
        id: "released_products",
        source: "ReleasedProductsV2",
        target: "msdyn_sharedproductdetails",
        depends_on: &["products"],
        per_company: true,
        key: None,
        what: "released products",
    },
    CatalogMap {
        id: "sites",
        source: "OperationalSites",
        target: "msdyn_operationalsites",
        depends_on: &["companies"],
        per_company: true,
        key: None,
        what: "operational sites",
    },
    CatalogMap {
        id: "warehouses",
        source: "Warehouses",
        target: "msdyn_warehouses",
        depends_on: &["sites"],
        per_company: true,
        key: None,
        what: "warehouses",
    },
    CatalogMap {
        id: "sales_order_headers",
        source: "SalesOrderHeadersV2",
        target: "salesorders",
        depends_on: &["customers", "released_products"],
        per_company: true,
        key: Some(("SalesOrderNumber", "ordernumber")),
        what: "sales order headers",
    },
    CatalogMap {
        id: "sales_order_lines",
        source: "SalesOrderLines",
        target: "salesorderdetails",
        depends_on: &["sales_order_headers", "warehouses"],
        per_company: true,
        key: None,
        what: "sales order lines",
    },
    CatalogMap {
        id: "purchase_order_headers",
        source: "PurchaseOrderHeadersV2",
        target: "msdyn_purchaseorders",
        depends_on: &["vendors", "released_products"],
        per_company: true,
        key: Some(("PurchaseOrderNumber", "msdyn_purchaseordernumber")),
        what: "purchase order headers",
    },
    CatalogMap {
        id: "purchase_order_lines",
        source: "PurchaseOrderLinesV2",
        target: "msdyn_purchaseorderproducts",
        depends_on: &["purchase_order_headers", "warehouses"],
        per_company: true,
        key: None,
        what: "purchase order lines",
    },
];

/// The maps chosen when none are named: parties and products, with what they need.
pub const CORE: &[&str] = &["customers", "vendors", "products"];

/// What `init` was told.
#[derive(Debug, Clone)]
pub struct StarterOptions {
    pub name: String,
    pub companies: Vec<String>,
    /// Map ids from [`CATALOG`]; their dependencies are added.
    pub maps: Vec<String>,
    /// `operator` or `gateway`.
    pub mode: String,
    /// RFC 3339 start and end of the freeze window.
    pub freeze: (String, String),
}

/// Why a starter could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StarterError {
    #[error("unknown map `{0}` (see `cutover init --list-maps`)")]
    UnknownMap(String),
    #[error("`{0}` is not a runbook name (letters, digits, `-` and `_`)")]
    BadName(String),
    #[error("`{0}` is not a company code (letters and digits, at most 8)")]
    BadCompany(String),
    #[error("mode must be `operator` or `gateway`, not `{0}`")]
    BadMode(String),
}

fn catalog(id: &str) -> Option<&'static CatalogMap> {
    CATALOG.iter().find(|m| m.id == id)
}

/// The chosen maps with every dependency added, in catalog (dependency) order, and the ones added.
pub fn closure(wanted: &[String]) -> Result<(Vec<&'static CatalogMap>, Vec<&'static str>), StarterError> {
    let mut set: BTreeSet<&'static str> = BTreeSet::new();
    let mut stack: Vec<&'static CatalogMap> = Vec::new();
    for w in wanted {
        let m = catalog(w).ok_or_else(|| StarterError::UnknownMap(w.clone()))?;
        stack.push(m);
    }
    let asked: BTreeSet<&str> = wanted.iter().map(String::as_str).collect();
    while let Some(m) = stack.pop() {
        if set.insert(m.id) {
            for d in m.depends_on {
                if let Some(dm) = catalog(d) {
                    stack.push(dm);
                }
            }
        }
    }
    let maps: Vec<&'static CatalogMap> = CATALOG.iter().filter(|m| set.contains(m.id)).collect();
    let added = maps
        .iter()
        .map(|m| m.id)
        .filter(|id| !asked.contains(id))
        .collect();
    Ok((maps, added))
}

/// Waves by dependency level: a map goes in the wave after the last of its dependencies.
fn waves(maps: &[&CatalogMap]) -> Vec<Vec<&'static str>> {
    let mut level: HashMap<&str, usize> = HashMap::new();
    let mut out: Vec<Vec<&'static str>> = Vec::new();
    for m in maps {
        let l = m
            .depends_on
            .iter()
            .filter_map(|d| level.get(d).map(|x| x + 1))
            .max()
            .unwrap_or(0);
        level.insert(m.id, l);
        if out.len() <= l {
            out.resize(l + 1, Vec::new());
        }
        if let Some(w) = out.get_mut(l) {
            w.push(m.id);
        }
    }
    out
}

fn check(o: &StarterOptions) -> Result<(), StarterError> {
    let ok_name = !o.name.is_empty()
        && o.name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok_name {
        return Err(StarterError::BadName(o.name.clone()));
    }
    if let Some(c) = o
        .companies
        .iter()
        .find(|c| c.is_empty() || c.len() > 8 || !c.chars().all(|x| x.is_ascii_alphanumeric()))
    {
        return Err(StarterError::BadCompany(c.clone()));
    }
    if o.mode != "operator" && o.mode != "gateway" {
        return Err(StarterError::BadMode(o.mode.clone()));
    }
    Ok(())
}

/// The runbook text.
pub fn render(o: &StarterOptions) -> Result<String, StarterError> {
    check(o)?;
    let (maps, added) = closure(&o.maps)?;
    let companies = o.companies.join(", ");
    let mut y = String::new();
    let w = &mut y;
    let _ = writeln!(
        w,
        "# Written by `cutover init`. Read it top to bottom once: every default a lead meets by surprise is here,"
    );
    let _ = writeln!(
        w,
        "# and docs/writing-a-runbook.md says why. Then: `cutover validate` (every mistake with its line),"
    );
    let _ = writeln!(
        w,
        "# `cutover plan` (order, critical path, freeze-window budget), `cutover run R --sim` (a rehearsal),"
    );
    let _ = writeln!(
        w,
        "# `cutover preflight R` (read-only checks against the real environments). Editor completion:"
    );
    let _ = writeln!(
        w,
        "# `cutover schema > runbook.schema.json` and a first line `# yaml-language-server: $schema=runbook.schema.json`."
    );
    let _ = writeln!(w, "runbook: {}", o.name);
    let _ = writeln!(w, "version: 0.1.0");
    let _ = writeln!(
        w,
        "description: Cutover of {companies} from F&O to Dataverse through dual-write"
    );
    let _ = writeln!(
        w,
        "freeze_window:                 # UTC; the console counts down to its end"
    );
    let _ = writeln!(w, "  start: {}", o.freeze.0);
    let _ = writeln!(w, "  end: {}", o.freeze.1);
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "defaults:                      # each line is the built-in value, written out"
    );
    let _ = writeln!(
        w,
        "  timeout: 30m                 # per step attempt; long DMF steps set their own"
    );
    let _ = writeln!(
        w,
        "  retries: 3                   # transient failures (connect, 5xx, 429) per call"
    );
    let _ = writeln!(
        w,
        "  poll: 10s                    # how often long operations are asked for progress"
    );
    let _ = writeln!(
        w,
        "  concurrency: 4               # maps of one wave synced at once (the plan queues the rest)"
    );
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "environments:                  # every URL and secret from the environment: never write a secret here"
    );
    let _ = writeln!(w, "  fno:");
    let _ = writeln!(w, "    kind: fno");
    let _ = writeln!(
        w,
        "    url: ${{FNO_URL}}             # https://<env>.operations.dynamics.com"
    );
    let _ = writeln!(w, "    auth:");
    let _ = writeln!(w, "      tenant: ${{TENANT_ID}}");
    let _ = writeln!(w, "      client_id: ${{FNO_CLIENT_ID}}");
    let _ = writeln!(
        w,
        "      client_secret: ${{FNO_CLIENT_SECRET}}   # or client_certificate / managed_identity / azure_cli"
    );
    let _ = writeln!(w, "  dataverse:");
    let _ = writeln!(w, "    kind: dataverse");
    let _ = writeln!(
        w,
        "    url: ${{DATAVERSE_URL}}       # https://<org>.crm.dynamics.com"
    );
    let _ = writeln!(w, "    auth:");
    let _ = writeln!(w, "      tenant: ${{TENANT_ID}}");
    let _ = writeln!(w, "      client_id: ${{DV_CLIENT_ID}}");
    let _ = writeln!(w, "      client_secret: ${{DV_CLIENT_SECRET}}");
    let _ = writeln!(w, "  dualwrite:");
    let _ = writeln!(w, "    kind: dualwrite");
    let _ = writeln!(w, "    link: [fno, dataverse]");
    if o.mode == "gateway" {
        let _ = writeln!(
            w,
            "    mode: gateway                # UNSUPPORTED by Microsoft (the API of its automation tool); needs a signed-in user"
        );
        let _ = writeln!(w, "    url: ${{DW_GATEWAY_URL}}");
        let _ = writeln!(
            w,
            "    auth:                        # `cutover login dualwrite` before the weekend"
        );
        let _ = writeln!(w, "      credential: device_code");
        let _ = writeln!(w, "      tenant: ${{TENANT_ID}}");
        let _ = writeln!(w, "      client_id: ${{PUBLIC_CLIENT_ID}}");
        let _ = writeln!(w, "      resource: https://IntegratorApp.com");
    } else {
        let _ = writeln!(
            w,
            "    mode: operator               # Microsoft's supported way: the console says what to click, then measures"
        );
    }
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "maps:                          # in dependency order; `rows` sizes the plan (10,000 when absent)"
    );
    if !added.is_empty() {
        let _ = writeln!(
            w,
            "  # added because a chosen map depends on them: {}",
            added.join(", ")
        );
    }
    for m in &maps {
        let _ = writeln!(w, "  {}:                          # {}", m.id, m.what);
        let _ = writeln!(w, "    source: fno:{}", m.source);
        let _ = writeln!(w, "    target: dataverse:{}", m.target);
        let deps: Vec<&str> = m
            .depends_on
            .iter()
            .copied()
            .filter(|d| maps.iter().any(|x| x.id == *d))
            .collect();
        if !deps.is_empty() {
            let _ = writeln!(w, "    depends_on: [{}]", deps.join(", "));
        }
        if m.per_company {
            let _ = writeln!(w, "    companies: [{companies}]");
        }
        let _ = writeln!(
            w,
            "    master: fno                  # the initial-sync master only; live sync has no conflict setting"
        );
        let _ = writeln!(
            w,
            "    tolerance: 0                 # allowed |source - target| at a gate (a count, or \"0.1%\")"
        );
        if let Some((s, t)) = m.key {
            let _ = writeln!(w, "    key: {{ source: {s}, target: {t} }}");
        }
    }
    let _ = writeln!(w);
    let _ = writeln!(w, "phases:");
    let _ = writeln!(w, "  - id: freeze");
    let _ = writeln!(w, "    title: Stop the business and take the systems out of use");
    let _ = writeln!(w, "    steps:");
    let _ = writeln!(w, "      - id: business-sign-off");
    let _ = writeln!(w, "        kind: manual");
    let _ = writeln!(
        w,
        "        title: Business users have stopped posting in F&O and Dataverse"
    );
    let _ = writeln!(
        w,
        "        checklist: [Finance sign-off, Sales sign-off, Warehouse sign-off]"
    );
    let _ = writeln!(w, "      - id: stop-integrations");
    let _ = writeln!(w, "        kind: manual");
    let _ = writeln!(
        w,
        "        title: Stop inbound integrations and recurring batch jobs"
    );
    let _ = writeln!(
        w,
        "        checklist: [Recurring integrations on hold, Batch groups on hold]"
    );
    let _ = writeln!(w, "  - id: snapshot");
    let _ = writeln!(w, "    title: Record the starting point");
    let _ = writeln!(w, "    steps:");
    let _ = writeln!(w, "      - id: baseline");
    let _ = writeln!(w, "        kind: parity");
    let _ = writeln!(w, "        title: Count both sides of every map (the baseline)");
    let _ = writeln!(w, "        maps: all");
    let _ = writeln!(w, "        record_baseline: true");
    let _ = writeln!(w, "      - id: approve-initial-sync");
    let _ = writeln!(w, "        kind: manual");
    let _ = writeln!(
        w,
        "        title: Cutover lead approves the start of the initial sync"
    );
    let _ = writeln!(w, "        confirm: true");
    let _ = writeln!(w, "  - id: initial-sync");
    let _ = writeln!(w, "    title: Initial sync, wave by wave in dependency order");
    let _ = writeln!(
        w,
        "    # After each wave: counts within tolerance and no errors, re-checked 3 times 5 minutes apart before"
    );
    let _ = writeln!(w, "    # anyone is asked (built-in: no re-check).");
    let _ = writeln!(
        w,
        "    gate: {{ parity: true, max_errors: 0, retries: 3, retry_every: 5m, confirm: true }}"
    );
    let _ = writeln!(w, "    waves:");
    for (i, wave) in waves(&maps).iter().enumerate() {
        let _ = writeln!(w, "      - id: wave-{}", i + 1);
        let _ = writeln!(w, "        maps: [{}]", wave.join(", "));
    }
    let _ = writeln!(w, "  - id: delta-enable");
    let _ = writeln!(w, "    title: Switch on live sync and prove it works");
    let _ = writeln!(w, "    steps:");
    let _ = writeln!(w, "      - id: go-live-approval");
    let _ = writeln!(w, "        kind: manual");
    let _ = writeln!(w, "        title: Go/no-go for live sync");
    let _ = writeln!(
        w,
        "        checklist: [Parity reviewed by Finance, Rollback plan confirmed]"
    );
    let _ = writeln!(w, "        confirm: true");
    let _ = writeln!(w, "      - id: enable-live-sync");
    let _ = writeln!(w, "        kind: dualwrite.run");
    let _ = writeln!(
        w,
        "        title: Start live sync for every map (no initial sync)"
    );
    let _ = writeln!(w, "        maps: all");
    let _ = writeln!(w, "        initial_sync: false");
    let _ = writeln!(
        w,
        "        point_of_no_return: true   # two confirmations, each journaled, before it starts"
    );
    if maps.iter().any(|m| m.key.is_some()) {
        let keyed: Vec<&str> = maps.iter().filter(|m| m.key.is_some()).map(|m| m.id).collect();
        let _ = writeln!(w, "      - id: sample");
        let _ = writeln!(w, "        kind: sample");
        let _ = writeln!(
            w,
            "        title: Reconcile 100 random records field by field (fails above 1% differing)"
        );
        let _ = writeln!(w, "        maps: [{}]", keyed.join(", "));
        let _ = writeln!(w, "        size: 100");
    }
    let _ = writeln!(w, "  - id: monitor");
    let _ = writeln!(w, "    title: Watch live sync until the business is back");
    let _ = writeln!(w, "    steps:");
    let _ = writeln!(w, "      - id: watch");
    let _ = writeln!(w, "        kind: monitor");
    let _ = writeln!(w, "        every: 5m");
    let _ = writeln!(
        w,
        "        until: {}               # the freeze window's end",
        o.freeze.1
    );
    let _ = writeln!(w, "        maps: all");
    Ok(y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_is_in_dependency_order() {
        for (i, m) in CATALOG.iter().enumerate() {
            for d in m.depends_on {
                let j = CATALOG.iter().position(|x| x.id == *d);
                assert!(
                    matches!(j, Some(j) if j < i),
                    "{} before its dependency {d}",
                    m.id
                );
            }
        }
    }

    #[test]
    fn a_chosen_map_brings_its_dependencies_and_says_which() {
        let (maps, added) = closure(&["sales_order_lines".to_owned()]).unwrap();
        let ids: Vec<&str> = maps.iter().map(|m| m.id).collect();
        assert!(ids.contains(&"customers") && ids.contains(&"warehouses") && ids.contains(&"companies"));
        assert!(added.contains(&"sales_order_headers") && !added.contains(&"sales_order_lines"));
        assert_eq!(
            closure(&["nope".to_owned()]).unwrap_err(),
            StarterError::UnknownMap("nope".into())
        );
    }
}
