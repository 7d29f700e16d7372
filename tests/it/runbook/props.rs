#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Properties: validation never panics, whatever the bytes; and any runbook the model can serialise
//! reloads to the same model.

use std::collections::BTreeMap;

use cutover::runbook::steps as kind;
use cutover::runbook::{
    Auth, Defaults, Duration, EnvKind, Environment, FreezeWindow, Gate, MapId, MapSelection, MapSpec, Master,
    Phase, Rows, Runbook, Step, StepId, StepKind, Timestamp, Tolerance, Wave, load, validate,
};
use proptest::prelude::*;

fn env_none(_: &str) -> Option<String> {
    None
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn validation_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = validate(&text, "fuzz.yaml", &env_none, true);
    }

    #[test]
    fn validation_never_panics_on_yaml_like_text(text in "[a-z_:\\- \\[\\]{}\n&*!|>'\"#%@`$.,0-9\t]{0,400}") {
        let _ = validate(&text, "fuzz.yaml", &env_none, false);
    }

    #[test]
    fn validation_never_panics_on_mutated_runbooks(cut in 0usize..4000, insert in "[\\[\\]{}:\\- \n\t&*]{0,4}") {
        let base = include_str!("../../../runbooks/demo.yaml");
        let at = base.char_indices().map(|(i, _)| i).nth(cut % base.chars().count()).unwrap_or(0);
        let text = format!("{}{insert}{}", &base[..at], &base[at..]);
        let _ = validate(&text, "fuzz.yaml", &env_none, false);
    }

    #[test]
    fn serialised_runbooks_reload_to_the_same_model(rb in runbook()) {
        let text = serde_saphyr::to_string(&rb).unwrap();
        let loaded = load(&text, "roundtrip.yaml");
        prop_assert!(loaded.diagnostics.is_empty(), "{:?}\n{text}", loaded.diagnostics);
        prop_assert_eq!(loaded.runbook.as_ref(), Some(&rb), "{}", text);
    }
}

fn text() -> impl Strategy<Value = String> {
    // Includes YAML's awkward characters so the serialiser's quoting is exercised.
    "[A-Za-z0-9 :#'\"{}\\[\\],&*!|>%@$-]{0,24}"
}

fn id() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_-]{0,10}"
}

fn duration() -> impl Strategy<Value = Duration> {
    (0u64..400_000).prop_map(Duration::from_secs)
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    (1_700_000_000i64..1_900_000_000).prop_map(|s| {
        Timestamp::from_datetime(chrono::DateTime::from_timestamp(s, 0).unwrap().fixed_offset())
    })
}

fn maps_sel() -> impl Strategy<Value = MapSelection> {
    prop_oneof![
        Just(MapSelection::All(cutover::runbook::AllMaps::All)),
        proptest::collection::vec(id().prop_map(MapId), 0..3).prop_map(MapSelection::List),
    ]
}

fn kind() -> impl Strategy<Value = StepKind> {
    prop_oneof![
        (
            proptest::option::of(text()),
            proptest::collection::vec(text(), 0..3)
        )
            .prop_map(|(instructions, checklist)| StepKind::Manual(kind::Manual {
                instructions,
                checklist
            })),
        duration().prop_map(|d| StepKind::Wait(kind::Wait {
            until: None,
            for_: Some(d)
        })),
        timestamp().prop_map(|t| StepKind::Wait(kind::Wait {
            until: Some(t),
            for_: None
        })),
        (maps_sel(), any::<bool>(), proptest::option::of(0u64..10)).prop_map(|(maps, record_baseline, t)| {
            StepKind::Parity(kind::Parity {
                maps,
                record_baseline,
                tolerance: t.map(Tolerance::Count),
            })
        }),
        (id(), id(), proptest::option::of(text())).prop_map(|(env, definition_group, package)| {
            StepKind::DmfExport(kind::DmfExport {
                env,
                definition_group,
                package,
                legal_entity: None,
                download: false,
            })
        }),
        (maps_sel(), proptest::option::of(any::<bool>())).prop_map(|(maps, initial_sync)| {
            StepKind::DualwriteRun(kind::DualwriteRun {
                maps,
                initial_sync,
                master: None,
            })
        }),
        (id(), id(), duration()).prop_map(|(m, from, within)| StepKind::Roundtrip(kind::Roundtrip {
            map: MapId(m),
            from,
            within: Some(within),
            record: None
        })),
        (duration(), duration(), maps_sel()).prop_map(|(every, f, maps)| StepKind::Monitor(Box::new(
            kind::Monitor {
                every,
                for_: Some(f),
                until: None,
                maps,
                alert: None,
                sample_size: Some(5)
            }
        ))),
        (text(), text()).prop_map(|(url, text)| StepKind::Notify(kind::Notify {
            url: Some(url),
            to: None,
            text
        })),
        (
            text(),
            proptest::collection::btree_map(id(), text(), 0..2),
            proptest::collection::vec("[A-Z_][A-Z0-9_]{0,8}", 0..2)
        )
            .prop_map(|(run, env, pass_env)| StepKind::Shell(kind::Shell { run, env, pass_env })),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    (
        id(),
        proptest::option::of(text()),
        proptest::collection::vec(id(), 0..2),
        proptest::option::of(duration()),
        any::<bool>(),
        kind(),
    )
        .prop_map(|(id, title, needs, timeout, pnr, kind)| Step {
            id: StepId::from(id),
            title,
            needs: needs.into_iter().map(StepId::from).collect(),
            timeout,
            retries: None,
            on_failure: None,
            confirm: !pnr,
            point_of_no_return: pnr,
            kind,
        })
}

fn map_spec() -> impl Strategy<Value = MapSpec> {
    (
        id(),
        id(),
        proptest::collection::vec(id(), 0..2),
        any::<bool>(),
        proptest::option::of(0u64..1_000_000),
    )
        .prop_map(|(s, t, deps, lww, rows)| MapSpec {
            source: format!("fno:{s}"),
            target: format!("dataverse:{t}"),
            depends_on: deps.into_iter().map(MapId).collect(),
            companies: vec!["USMF".into()],
            company_lookup: None,
            filter: None,
            master: Some(if lww { Master::LastWriteWins } else { Master::Fno }),
            tolerance: Some(Tolerance::Percent("0.5%".into())),
            initial_sync: None,
            key: None,
            compare: BTreeMap::new(),
            values: BTreeMap::new(),
            owner: None,
            field_owners: BTreeMap::new(),
            rows: rows.map(Rows::Total),
            initial_sync_execution_id: None,
            error_sources: None,
        })
}

fn phase() -> impl Strategy<Value = Phase> {
    prop_oneof![
        (id(), proptest::collection::vec(step(), 0..4)).prop_map(|(id, steps)| Phase {
            id,
            title: None,
            gate: None,
            steps: Some(steps.into_iter().map(std::sync::Arc::new).collect()),
            waves: None
        }),
        (
            id(),
            proptest::collection::vec((id(), proptest::collection::vec(id(), 1..3)), 1..3)
        )
            .prop_map(|(id, waves)| Phase {
                id,
                title: Some("waves".into()),
                gate: Some(Gate {
                    parity: true,
                    max_errors: Some(0),
                    ..Gate::default()
                }),
                steps: None,
                waves: Some(
                    waves
                        .into_iter()
                        .map(|(id, maps)| Wave {
                            id,
                            title: None,
                            maps: maps.into_iter().map(MapId).collect(),
                            concurrency: Some(2)
                        })
                        .collect()
                ),
            }),
    ]
}

fn runbook() -> impl Strategy<Value = Runbook> {
    (
        id(),
        proptest::option::of(text()),
        proptest::option::of((timestamp(), timestamp())),
        proptest::collection::btree_map(id(), map_spec(), 0..3),
        proptest::collection::vec(phase(), 1..4),
        proptest::option::of(duration()),
    )
        .prop_map(|(name, description, window, maps, phases, timeout)| {
            let mut environments = BTreeMap::new();
            environments.insert(
                "fno".to_owned(),
                Environment {
                    kind: EnvKind::Fno,
                    url: Some("${FNO_URL}".into()),
                    auth: Some(Auth {
                        tenant: Some("t".into()),
                        client_id: Some("c".into()),
                        client_secret: Some("${FNO_SECRET}".into()),
                        ..Auth::default()
                    }),
                    link: None,
                    mode: None,
                    account: None,
                    container: None,
                    folder: None,
                    warehouse_id: None,
                    pipelines: BTreeMap::new(),
                    catalog: None,
                    schema: None,
                    token: None,
                    sas: None,
                },
            );
            Runbook {
                runbook: name,
                version: "1.0.0".into(),
                description,
                freeze_window: window.map(|(start, end)| FreezeWindow { start, end }),
                defaults: Defaults {
                    timeout,
                    ..Defaults::default()
                },
                environments,
                maps: maps.into_iter().map(|(k, v)| (MapId(k), v)).collect(),
                phases,
                approvals: None,
                journal: None,
                notify_targets: BTreeMap::new(),
            }
        })
}
