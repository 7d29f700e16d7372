//! Who pressed the key: with an `azure_cli` environment (the `az` stand-in signed in as a given user),
//! the point-of-no-return confirmation is journaled with the signed-in identity (object id, UPN,
//! tenant) beside the `--operator` label, and the evidence pack shows it. The runbook's `approvals`
//! admit a listed UPN or a member of a listed group, and refuse anyone else: the refusal is journaled
//! (`approval_refused`), the run waits for someone who may decide (exit 3), and the report shows it.
use crate::support::auth::*;
use cutover::engine::Event;

const GROUP: &str = "0f0f0f0f-0000-4000-8000-000000000001";

fn users() -> String {
    format!(
        "  users:\n    - {{ upn: lead@contoso.com, name: Cutover Lead }}\n    - {{ upn: ops@contoso.com, groups: [{GROUP}] }}\n    - {{ upn: eve@contoso.com }}\n"
    )
}

fn rb() -> String {
    runbook(
        "fno",
        "fno",
        FNO,
        "{ credential: azure_cli }",
        "      - { id: read, kind: http, env: fno, path: /data/Companies }\n      - { id: go-live, kind: manual, title: Switch production to dual-write, point_of_no_return: true }",
        &format!(
            "approvals: {{ require_identity: true, approvers: [lead@contoso.com], approver_groups: [\"{GROUP}\"] }}"
        ),
    )
}

async fn as_user(sim: &str, upn: &str) -> (tempfile::TempDir, std::process::Output) {
    let dir = tempfile::tempdir().unwrap();
    let bin = az_stand_in(dir.path());
    az_token(dir.path(), sim, 1, upn, FNO, 3600).await;
    let out = run(dir.path(), &rb(), sim, &[("PATH", path_with(&bin))]).await;
    (dir, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_point_of_no_return_is_journaled_with_the_signed_in_identity_and_refused_for_others() {
    let sim = start_sim(&scenario(&users())).await;
    let url = sim.url();
    for upn in ["lead@contoso.com", "ops@contoso.com"] {
        let (dir, out) = as_user(&url, upn).await;
        assert_eq!(out.status.code(), Some(0), "{upn}: {}", text(&out));
        let events = journal_events(&dir.path().join("run.journal"));
        let pnr = events
            .iter()
            .find_map(|e| match e {
                Event::OperatorDecision {
                    step: Some(s),
                    identity,
                    operator,
                    ..
                } if s.as_str() == "go-live" && identity.is_some() => {
                    Some((operator.clone(), identity.clone().unwrap()))
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("{upn}: no decision on go-live with an identity: {events:#?}"));
        assert_eq!(pnr.0, "tess", "--operator stays the label");
        assert_eq!(pnr.1.upn.as_deref(), Some(upn));
        assert_eq!(pnr.1.tid, TENANT);
        assert_eq!(pnr.1.oid.len(), 36);
        assert!(!events.iter().any(|e| matches!(e, Event::ApprovalRefused { .. })));
        reports(dir.path()).await;
        let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
        assert!(
            md.contains(&format!("tess — signed in as {upn} (oid {}", pnr.1.oid)),
            "{md}"
        );
        let json = std::fs::read_to_string(dir.path().join("report.json")).unwrap();
        assert!(
            json.contains(&format!("\"upn\":\"{upn}\"")) || json.contains(&format!("\"upn\": \"{upn}\"")),
            "{json}"
        );
    }

    let (dir, out) = as_user(&url, "eve@contoso.com").await;
    let t = text(&out);
    assert_eq!(
        out.status.code(),
        Some(3),
        "waits for someone who may decide: {t}"
    );
    assert!(
        t.contains("REFUSED go-live") && t.contains("eve@contoso.com"),
        "{t}"
    );
    let events = journal_events(&dir.path().join("run.journal"));
    let refused = events.iter().find_map(|e| match e {
        Event::ApprovalRefused {
            step: Some(s),
            identity,
            reason,
            ..
        } if s.as_str() == "go-live" => Some((identity.clone(), reason.clone())),
        _ => None,
    });
    let (identity, reason) = refused.unwrap_or_else(|| panic!("no approval_refused: {events:#?}"));
    assert_eq!(identity.unwrap().upn.as_deref(), Some("eve@contoso.com"));
    assert!(reason.contains("not among the runbook's approvers"), "{reason}");
    let at = events
        .iter()
        .position(|e| matches!(e, Event::ApprovalRefused { .. }))
        .unwrap();
    assert!(
        !events[at..].iter().any(|e| match e {
            Event::OperatorDecision { step: Some(s), .. } => s.as_str() == "go-live",
            Event::StepFinished { step, .. } => step.as_str() == "go-live",
            _ => false,
        }),
        "the refused confirmation was not acted on: {events:#?}"
    );
    reports(dir.path()).await;
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(
        md.contains("refused") && md.contains("not among the runbook's approvers"),
        "{md}"
    );
    let mut scan = Scan::default();
    scan.bytes("stdout", &out.stdout);
    scan.bytes("stderr", &out.stderr);
    scan.dir(dir.path(), &[&dir.path().join("az.tokens")]);
    scan.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_signed_in_identity_the_point_of_no_return_is_refused() {
    let sim = start_sim(&scenario(&users())).await;
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    // An az that is not signed in: the read fails too, so give the step nothing to read.
    let rb = rb().replace(
        "      - { id: read, kind: http, env: fno, path: /data/Companies }\n",
        "",
    );
    let az = bin.join("az");
    std::fs::write(
        &az,
        "#!/bin/sh\necho \"ERROR: Please run 'az login' to setup account.\" >&2\nexit 1\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = run(dir.path(), &rb, &sim.url(), &[("PATH", path_with(&bin))]).await;
    let t = text(&out);
    assert_eq!(out.status.code(), Some(3), "{t}");
    assert!(t.contains("requires a signed-in identity"), "{t}");
}
