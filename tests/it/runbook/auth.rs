//! `cutover validate` on the `auth` kinds and `approvals`: each problem with its line and column,
//! like every other diagnostic; the cloud cross-check; the gateway's device-code token labelled as
//! our model. The same file passes once fixed, and the JSON schema knows every new field.
use cutover::runbook::{Severity, validate};

const BAD: &str = r#"runbook: auth-kinds
version: 1.0.0
approvals:
  require_identity: true
  identity_from: fno
  approver_groups: [Cutover Leads]
environments:
  fno:
    kind: fno
    url: https://contoso.operations.dynamics.com
    auth:
      credential: client_certificate
      client_id: ${FNO_CLIENT_ID}
      certificate: /etc/cutover/fno.pfx
      certificate_password: hunter2hunter2
      client_secret: ${FNO_SECRET}
  dataverse:
    kind: dataverse
    url: https://contoso.crm.microsoftdynamics.us
    auth: { credential: managed_identity, authority: https://login.microsoftonline.com, client_id: a, object_id: b }
  gateway:
    kind: dualwrite
    link: [fno, dataverse]
    mode: gateway
    url: https://projectmanagementservice.weu-il107.gateway.prod.island.powerapps.com
    auth: { credential: device_code, tenant: "${TENANT_ID}", client_id: "${DW_CLIENT_ID}", resource: https://IntegratorApp.com }
  storage:
    kind: http
    url: https://contosolake.blob.core.windows.net
    auth: { credential: workload_identity, tenant: t, client_id: c, scope: https://storage.azure.com/, resource: https://storage.azure.com }
phases:
  - id: p
    steps:
      - { id: s, kind: manual, title: ok }
"#;

fn find<'a>(
    d: &'a [cutover::runbook::Diagnostic],
    code: &str,
    line: u32,
) -> &'a cutover::runbook::Diagnostic {
    d.iter()
        .find(|x| x.code == code && x.line == line)
        .unwrap_or_else(|| panic!("no `{code}` at line {line}: {d:#?}"))
}

#[test]
fn every_auth_problem_is_reported_at_its_line() {
    let env = |_: &str| None;
    let d = validate(BAD, "bad.yaml", &env, false);
    let e = find(&d, "missing-field", 12);
    assert!(e.message.contains("`client_certificate` needs `tenant`"), "{e:?}");
    assert_eq!(e.severity, Severity::Error);
    find(&d, "literal-secret", 14);
    find(&d, "literal-secret", 15);
    let u = find(&d, "unused-field", 16);
    assert!(
        u.message
            .contains("`client_secret` does not apply to `credential: client_certificate`"),
        "{u:?}"
    );
    find(&d, "invalid-value", 20);
    let c = find(&d, "cloud-mismatch", 20);
    assert_eq!(c.severity, Severity::Warning);
    assert!(
        c.message.contains("public cloud") && c.message.contains("US Government"),
        "{c:?}"
    );
    let g = find(&d, "gateway-token-model", 26);
    assert!(g.message.contains("is our model"), "{g:?}");
    assert_eq!(g.severity, Severity::Warning);
    let s = d
        .iter()
        .find(|x| x.code == "invalid-value" && x.line == 30 && x.message.contains("exclusive"));
    assert!(s.is_some(), "{d:#?}");
    let idf = find(&d, "invalid-value", 5);
    assert!(idf.message.contains("does not sign a person in"), "{idf:?}");
    let grp = find(&d, "invalid-value", 6);
    assert!(grp.message.contains("not an object id"), "{grp:?}");
    assert!(d.iter().all(|x| x.column > 0), "{d:#?}");
    assert!(
        !format!("{d:?}").contains("hunter2hunter2"),
        "the literal is not echoed"
    );
}

#[test]
fn the_kinds_written_right_validate_clean_and_the_schema_knows_them() {
    let good = r#"runbook: auth-kinds
version: 1.0.0
approvals: { require_identity: true, approvers: [lead@contoso.com], approver_groups: ["0f0f0f0f-0000-4000-8000-000000000001"] }
environments:
  fno:
    kind: fno
    url: https://contoso.operations.dynamics.com
    auth: { credential: client_certificate, tenant: "${T}", client_id: "${C}", certificate: "${CERT}", certificate_password: "${CERT_PASSWORD}", signing_algorithm: rs256 }
  dataverse:
    kind: dataverse
    url: https://contoso.crm.dynamics.com
    auth: { credential: azure_cli }
  vm:
    kind: http
    url: https://api.powerplatform.com
    auth: { credential: managed_identity, object_id: "${MI_OBJECT_ID}" }
  ci:
    kind: http
    url: https://contosolake.blob.core.windows.net
    auth: { credential: workload_identity, tenant: "${T}", client_id: "${C}", scope: https://storage.azure.com/.default }
  legacy:
    kind: fno
    url: https://contoso-uat.operations.dynamics.com
    auth: { tenant: "${T}", client_id: "${C}", client_secret: "${S}" }
phases:
  - id: p
    steps:
      - { id: s, kind: manual, title: ok, point_of_no_return: true }
"#;
    let env = |_: &str| None;
    let d = validate(good, "good.yaml", &env, false);
    assert!(d.iter().all(|x| x.severity != Severity::Error), "{d:#?}");
    let schema =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/runbook.schema.json")).unwrap();
    for k in [
        "client_certificate",
        "managed_identity",
        "azure_cli",
        "device_code",
        "workload_identity",
        "approver_groups",
        "federated_token_file",
        "require_identity",
    ] {
        assert!(schema.contains(k), "{k}");
    }
}
