//! Every pane against `TestBackend`, with the clock injected: whole-screen snapshots at 80×24
//! (compact) and 200×60 (wide), NO_COLOR, modals, the help overlay and the error filter.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::tui as tui_support;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use cutover::engine::event::DecisionKind;
use cutover::tui::keymap::help_rows;
use cutover::tui::{App, PaneId, draw};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;
use tui_support::*;

fn render(app: &mut App, w: u16, h: u16) -> Terminal<TestBackend> {
    app.on_resize(w, h);
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| draw(f, app)).unwrap();
    t
}

fn text(buf: &Buffer) -> String {
    let mut out = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

fn key(app: &mut App, code: KeyCode) {
    app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
}

#[test]
fn compact_80x24_shows_every_pane_through_the_tabs() {
    let mut app = live_app(&mid_run(30 * 3600), true);
    let t = render(&mut app, 80, 24);
    insta::assert_snapshot!("compact_steps_parity", t.backend());
    for (pane, name) in [
        (PaneId::Errors, "compact_errors"),
        (PaneId::Detail, "compact_detail"),
        (PaneId::Log, "compact_log"),
    ] {
        while app.focus != pane {
            key(&mut app, KeyCode::Tab);
        }
        let t = render(&mut app, 80, 24);
        insta::assert_snapshot!(name, t.backend());
    }
}

#[test]
fn wide_200x60_shows_all_panes_at_once() {
    let mut s = mid_run(30 * 3600);
    ask(&mut s, 5, "enable-dualwrite", DecisionKind::Confirm, &[]);
    let mut app = live_app(&s, true);
    let t = render(&mut app, 200, 60);
    let screen = text(t.backend().buffer());
    for want in [
        "Steps",
        "Parity",
        "Error queue",
        "Detail",
        "Events",
        "WAITING ON YOU",
    ] {
        assert!(screen.contains(want), "missing {want}\n{screen}");
    }
    // Two pending decisions: both in the wide banner, each with its deadline.
    assert_eq!(screen.matches("WAITING ON YOU").count(), 2);
    assert!(screen.matches("deadline").count() >= 2);
    assert!(!screen.contains("more)"), "both fit, none is hidden");
    insta::assert_snapshot!("wide", t.backend());
}

#[test]
fn header_freeze_countdown_turns_red_in_the_last_four_hours() {
    let find = |app: &mut App| {
        let t = render(app, 200, 60);
        let buf = t.backend().buffer().clone();
        let screen = text(&buf);
        let (y, line) = screen
            .lines()
            .enumerate()
            .find(|(_, l)| l.contains("freeze ends"))
            .unwrap();
        let byte = line.find("freeze ends").unwrap();
        let x = line[..byte].chars().count();
        buf[(x as u16, y as u16)].fg
    };
    let mut late = live_app(&mid_run(3 * 3600), true);
    assert_eq!(find(&mut late), Color::Red);
    let mut early = live_app(&mid_run(30 * 3600), true);
    assert_ne!(find(&mut early), Color::Red);
    let mut plain = live_app(&mid_run(3 * 3600), false);
    let t = render(&mut plain, 200, 60);
    assert!(
        text(t.backend().buffer()).contains("freeze ends in 3h00m !"),
        "NO_COLOR keeps the warning as text"
    );
}

#[test]
fn no_color_uses_no_colour_and_keeps_status_readable() {
    let mut app = live_app(&mid_run(3 * 3600), false);
    for (w, h) in [(80, 24), (200, 60)] {
        let t = render(&mut app, w, h);
        let buf = t.backend().buffer();
        for cell in buf.content() {
            assert_eq!(cell.fg, Color::Reset, "fg colour at {:?}", cell.symbol());
            assert_eq!(cell.bg, Color::Reset, "bg colour at {:?}", cell.symbol());
        }
        let screen = text(buf);
        for sym in ["✓", "✗", "○", "FAILED", "⚑PNR", "▶ "] {
            assert!(screen.contains(sym), "{sym} at {w}x{h}\n{screen}");
        }
    }
    let t = render(&mut app, 80, 24);
    insta::assert_snapshot!("compact_no_color", t.backend());
}

#[test]
fn modals_render_over_the_console() {
    let mut s = mid_run(30 * 3600);
    ask(
        &mut s,
        5,
        "freeze-batch",
        DecisionKind::ApproveManual,
        &["batch group stopped", "users logged off"],
    );
    let mut app = live_app(&s, true);
    key(&mut app, KeyCode::Char('g'));
    key(&mut app, KeyCode::Char('a'));
    key(&mut app, KeyCode::Char(' '));
    let t = render(&mut app, 80, 24);
    insta::assert_snapshot!("modal_checklist", t.backend());
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Char('G'));
    key(&mut app, KeyCode::Char('k'));
    key(&mut app, KeyCode::Char('k'));
    key(&mut app, KeyCode::Char('s'));
    for c in "loaded by DMF".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    let t = render(&mut app, 80, 24);
    let screen = text(t.backend().buffer());
    assert!(screen.contains("Skip step"), "{screen}");
    assert!(screen.contains("> loaded by DMF▏"), "{screen}");
    assert!(screen.contains("as alice"), "{screen}");
}

#[test]
fn help_lists_every_binding_from_the_key_map() {
    let mut app = live_app(&mid_run(30 * 3600), true);
    key(&mut app, KeyCode::Char('?'));
    let t = render(&mut app, 200, 60);
    let screen = text(t.backend().buffer());
    for (_, keys, help) in help_rows() {
        assert!(screen.contains(&keys), "{keys} not in help");
        assert!(screen.contains(help), "{help} not in help");
    }
    key(&mut app, KeyCode::Char('x'));
    assert!(!app.help, "any key but a scrolling one closes the help");
}

#[test]
fn filter_narrows_the_error_list() {
    let mut app = live_app(&mid_run(30 * 3600), true);
    key(&mut app, KeyCode::Char('/'));
    for c in "lookup".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    key(&mut app, KeyCode::Enter);
    let t = render(&mut app, 200, 60);
    let screen = text(t.backend().buffer());
    assert!(screen.contains("/lookup  4 match"), "{screen}");
    let listed: Vec<&str> = screen
        .lines()
        .filter(|l| l.contains("Vendor group missing"))
        .collect();
    assert_eq!(listed.len(), 4, "{listed:?}");
    assert!(listed.iter().all(|l| l.contains("lookup")));
    assert!(!screen.contains("Duplicate record"));
    let t = render(&mut app, 80, 24);
    insta::assert_snapshot!("compact_filtered_errors", t.backend());
}

#[test]
fn mouse_click_selects_a_step_row() {
    let mut app = live_app(&mid_run(30 * 3600), true);
    render(&mut app, 80, 24);
    let areas = app.areas();
    // Row 1 inside the tree is the first step (row 0 is the phase header).
    let click = MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: areas.steps.x + 3,
        row: areas.steps.y + 2,
        modifiers: KeyModifiers::NONE,
    };
    app.on_mouse(click);
    assert_eq!(app.selected_step().unwrap().info.id.as_str(), "freeze-batch");
    assert!(!app.follow);
}

#[test]
fn empty_console_renders_before_the_first_envelope() {
    let mut app = app(cutover::engine::RunState::default(), true);
    let t = render(&mut app, 80, 24);
    let screen = text(t.backend().buffer());
    assert!(screen.contains("(no run yet)"));
    assert!(screen.contains("waiting for the plan"));
}

#[test]
fn the_detail_and_events_panes_say_why_a_step_failed_in_the_services_words() {
    let mut s = mid_run(30 * 3600);
    s.push(
        -500,
        cutover::engine::event::Event::StepFinished {
            step: "wave-1:vendors".into(),
            outcome: cutover::engine::event::StepOutcome::Failed {
                message: "the initial sync of vendors failed (resumed 3 times, retries 3)".into(),
                reason: Some("Lookup for 'parents' could not be resolved".into()),
            },
            outputs: std::collections::BTreeMap::new(),
        },
    );
    ask(&mut s, -490, "wave-1:vendors", DecisionKind::StepFailed, &[]);
    let mut app = live_app(&s, true);
    let t = render(&mut app, 200, 60);
    let screen = text(t.backend().buffer());
    assert!(screen.contains("Detail · wave-1:vendors"), "{screen}");
    assert!(
        screen.contains("why    the service said: Lookup for 'parents'"),
        "the detail pane names the reason\n{screen}"
    );
    // The step's events say it too (the pane cuts lines at its width, so read the line itself).
    let state = s.state();
    let finished = s.envelopes.iter().rev().find_map(|e| match &e.event {
        cutover::engine::event::Event::StepFinished { .. } => cutover::tui::params::event_line(e, &state),
        _ => None,
    });
    let (_, line) = finished.unwrap();
    assert!(
        line.ends_with("(the service said: Lookup for 'parents' could not be resolved)"),
        "{line}"
    );
    assert!(
        screen.contains("#30 FAILED after 11m 40s: the initial sync of vendors"),
        "{screen}"
    );
}

/// Wave 3 of a demo-like run: companies synced and within, customers synced and really drifting
/// (5 rows), sales_order_lines not initially synced yet in three companies.
fn wave_three() -> Script {
    use cutover::engine::event::{Event, MapInfo, StepOutcome, Tolerance};
    let mut s = Script::new();
    let wave_map = |wave: &str, map: &str| {
        let mut st = step(
            &format!("{wave}:{map}"),
            "initial-sync",
            Some(wave),
            "dualwrite.run",
            map,
        );
        st.map = Some(map.into());
        st
    };
    let steps = vec![
        wave_map("wave-1", "companies"),
        wave_map("wave-2", "customers"),
        wave_map("wave-3", "sales_order_lines"),
        wave_map("wave-3", "sales_order_headers"),
    ];
    let companies = || vec!["USMF".to_owned(), "USRT".to_owned(), "DEMF".to_owned()];
    let maps = vec![
        MapInfo {
            id: "companies".into(),
            companies: Vec::new(),
            tolerance: Tolerance::Count(0),
        },
        MapInfo {
            id: "customers".into(),
            companies: vec!["USMF".into()],
            tolerance: Tolerance::Count(0),
        },
        MapInfo {
            id: "sales_order_lines".into(),
            companies: companies(),
            tolerance: Tolerance::Count(0),
        },
        MapInfo {
            id: "sales_order_headers".into(),
            companies: vec!["USMF".into()],
            tolerance: Tolerance::Count(0),
        },
    ];
    s.push(-600, run_started(steps, maps, 30 * 3600));
    for (secs, st) in [(-500, "wave-1:companies"), (-400, "wave-2:customers")] {
        s.push(
            secs,
            Event::StepFinished {
                step: st.into(),
                outcome: StepOutcome::Succeeded,
                outputs: std::collections::BTreeMap::new(),
            },
        );
    }
    s.push(
        -60,
        Event::StepIntent {
            step: "wave-3:sales_order_lines".into(),
            attempt: 1,
            handle: None,
        },
    );
    let sample = |map: &str, company: Option<&str>, source: u64, target: u64| Event::ParitySample {
        step: None,
        map: map.into(),
        company: company.map(str::to_owned),
        source,
        target,
    };
    s.push(-30, sample("companies", None, 3, 3));
    s.push(-30, sample("customers", Some("USMF"), 1_200, 1_195));
    for (c, n) in [("USMF", 9_000), ("USRT", 4_000), ("DEMF", 2_500)] {
        s.push(-30, sample("sales_order_lines", Some(c), n, 0));
    }
    s.push(-30, sample("sales_order_headers", Some("USMF"), 3_000, 0));
    s
}

#[test]
fn maps_not_yet_synced_are_pending_not_drifting_and_keep_their_company_at_80x24() {
    let mut app = live_app(&wave_three(), true);
    let t = render(&mut app, 80, 24);
    let screen = text(t.backend().buffer());
    let rows: Vec<&str> = screen.lines().filter(|l| l.contains("sales…lines@")).collect();
    assert_eq!(rows.len(), 3, "{screen}");
    // Another map cut to the same width stays told apart.
    assert!(screen.contains("sales…aders@USMF"), "{screen}");
    for company in ["@USMF", "@USRT", "@DEMF"] {
        assert_eq!(
            rows.iter().filter(|r| r.contains(company)).count(),
            1,
            "each row keeps its company {company}\n{screen}"
        );
    }
    for r in &rows {
        assert!(r.contains("pending") && !r.contains('✗'), "{r}");
    }
    assert!(
        screen.contains("1 drifting · 4 pending"),
        "only customers' real drift counts\n{screen}"
    );
    assert!(
        screen.contains("Parity ✗1"),
        "the tab counts the real drift\n{screen}"
    );
    // The real drift is on top, the pending rows below it.
    let first_row = screen.lines().position(|l| l.contains("customers@USMF")).unwrap();
    let first_pending = screen.lines().position(|l| l.contains("sales…")).unwrap();
    assert!(first_row < first_pending, "{screen}");
}

/// A map whose initial sync has just finished still has its last count from before the sync (3,000
/// against 0): pending until the next count, not red. The next count then decides: level, or a
/// real drift.
#[test]
fn a_map_just_synced_is_pending_until_it_is_counted_again() {
    use cutover::engine::event::{Event, StepOutcome};
    let finished = |s: &mut Script, secs| {
        s.push(
            secs,
            Event::StepFinished {
                step: "wave-3:sales_order_headers".into(),
                outcome: StepOutcome::Succeeded,
                outputs: std::collections::BTreeMap::new(),
            },
        );
    };
    let headers_row = |screen: &str| -> String {
        screen
            .lines()
            .find(|l| l.contains("sales…aders@USMF"))
            .unwrap_or_else(|| panic!("no headers row\n{screen}"))
            .to_owned()
    };
    let sample = |target| Event::ParitySample {
        step: None,
        map: "sales_order_headers".into(),
        company: Some("USMF".into()),
        source: 3_000,
        target,
    };

    let mut s = wave_three();
    finished(&mut s, -10);
    let mut app = live_app(&s, true);
    let screen = text(render(&mut app, 80, 24).backend().buffer());
    let row = headers_row(&screen);
    assert!(row.contains("pending") && !row.contains('✗'), "{row}\n{screen}");
    assert!(screen.contains("1 drifting"), "only customers drift\n{screen}");

    s.push(-5, sample(3_000));
    let mut app = live_app(&s, true);
    let screen = text(render(&mut app, 80, 24).backend().buffer());
    let row = headers_row(&screen);
    assert!(row.contains('✓') && !row.contains("pending"), "{row}\n{screen}");

    s.push(-2, sample(2_990));
    let mut app = live_app(&s, true);
    let screen = text(render(&mut app, 80, 24).backend().buffer());
    let row = headers_row(&screen);
    assert!(
        row.contains('✗'),
        "a drift after the sync is shown\n{row}\n{screen}"
    );
    assert!(screen.contains("2 drifting"), "{screen}");
}

/// A runbook that drives the dual-write gateway is labelled unsupported in the header, wide and compact.
#[test]
fn a_gateway_mode_runbook_is_labelled_unsupported_in_the_header() {
    let yaml = format!(
        "runbook: gw\nversion: 1.0.0\n{}phases:\n  - id: p\n    steps:\n      - {{ id: m, kind: manual, instructions: go }}\n",
        crate::support::exec::environments(false)
    );
    let rb = std::sync::Arc::new(cutover::runbook::load::load(&yaml, "gw.yaml").runbook.unwrap());
    for (w, h, want) in [
        (200, 60, "  gateway mode: unsupported by Microsoft  run "),
        (80, 24, "  gateway: unsupported  run "),
    ] {
        let mut app = live_app(&mid_run(30 * 3600), false);
        app.cfg.runbook = Some(rb.clone());
        let t = render(&mut app, w, h);
        let screen = text(t.backend().buffer());
        let first = screen.lines().next().unwrap();
        assert!(first.contains(want), "{w}x{h}: {first}");
        assert!(
            first.contains("operator"),
            "the facts after the label still fit: {first}"
        );
        let mut plain = live_app(&mid_run(30 * 3600), false);
        let t = render(&mut plain, w, h);
        assert!(
            !text(t.backend().buffer()).contains("unsupported"),
            "no gateway, no label"
        );
    }
}

#[test]
fn the_header_says_when_the_point_of_no_return_was_passed() {
    let mut s = mid_run(30 * 3600);
    let mut app = live_app(&s, false);
    let before = text(render(&mut app, 200, 60).backend().buffer());
    assert!(!before.contains("point of no return at"), "{before}");
    s.push(
        3 * 3600,
        cutover::engine::Event::StepIntent {
            step: "enable-dualwrite".into(),
            attempt: 1,
            handle: None,
        },
    );
    let mut app = live_app(&s, false);
    let after = text(render(&mut app, 200, 60).backend().buffer());
    assert!(
        after.contains("⚑ past the point of no return at 23:00:00 (enable-dualwrite)"),
        "{after}"
    );
    // At 120 columns the ETA and the freeze window give way, not the point of no return (it came last and was
    // cut to "⚑ past the point of n" in a real terminal).
    let wide = text(render(&mut app, 120, 36).backend().buffer());
    assert!(
        wide.contains("⚑ past the point of no return at 23:00:00 (enable-dualwrite)"),
        "{wide}"
    );
    let compact = text(render(&mut app, 80, 24).backend().buffer());
    assert!(compact.contains("⚑PNR 23:00"), "{compact}");
}

#[test]
fn a_manual_steps_dialog_keeps_the_instructions_on_their_own_lines() {
    let mut s = mid_run(30 * 3600);
    s.push(
        5,
        cutover::engine::Event::AwaitingOperator {
            step: Some("freeze-batch".into()),
            decision: DecisionKind::ApproveManual,
            prompt:
                "Stop the batch jobs\n\nSystem administration → Batch jobs → set every group to Withhold."
                    .into(),
            checklist: vec![],
            deadline: None,
        },
    );
    let mut app = live_app(&s, false);
    key(&mut app, KeyCode::Char('g'));
    key(&mut app, KeyCode::Char('a'));
    let screen = text(render(&mut app, 120, 40).backend().buffer());
    let rows: Vec<&str> = screen.lines().collect();
    let label = rows
        .iter()
        .position(|r| r.contains("║freeze-batch: Stop the batch jobs"))
        .unwrap_or_else(|| panic!("{screen}"));
    assert!(!rows[label].contains("System administration"), "{screen}");
    assert!(
        !rows[label + 1].contains("Stop the batch"),
        "the title is not repeated under the label: {screen}"
    );
    assert!(
        rows[label + 2].contains("System administration → Batch jobs"),
        "{screen}"
    );
}

#[test]
fn g_in_the_detail_pane_lands_on_its_last_page_not_past_it() {
    let mut app = live_app(&mid_run(30 * 3600), false);
    while app.focus != PaneId::Detail {
        key(&mut app, KeyCode::Tab);
    }
    let top = text(render(&mut app, 80, 14).backend().buffer());
    app.on_key(KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT));
    let bottom = text(render(&mut app, 80, 14).backend().buffer());
    assert_ne!(top, bottom, "G scrolled");
    // The pane's inside (between its borders) still has text on most of its rows.
    let inside: Vec<&str> = bottom
        .lines()
        .filter(|l| l.starts_with('┏') || l.starts_with('┃') || l.starts_with('│'))
        .collect();
    let filled = inside
        .iter()
        .filter(|l| {
            l.trim_matches(|c: char| c == '┃' || c == '│' || c.is_whitespace())
                .chars()
                .count()
                > 0
        })
        .count();
    assert!(filled * 2 > inside.len(), "a blank pane after G:\n{bottom}");
    // And k from there moves up at once (the scroll was not left past the end).
    key(&mut app, KeyCode::Char('k'));
    let up = text(render(&mut app, 80, 14).backend().buffer());
    assert_ne!(up, bottom, "k after G moved:\n{up}");
}

#[test]
fn the_help_scrolls_on_a_short_terminal_and_reaches_its_last_line() {
    let mut app = live_app(&mid_run(30 * 3600), false);
    key(&mut app, KeyCode::Char('?'));
    let first = text(render(&mut app, 80, 24).backend().buffer());
    assert!(first.contains("j/k scroll · more ↓"), "{first}");
    assert!(
        !first.contains("any key closes"),
        "the last line is below: {first}"
    );
    for _ in 0..60 {
        key(&mut app, KeyCode::Char('j'));
    }
    assert!(app.help, "scrolling keeps the help open");
    let last = text(render(&mut app, 80, 24).backend().buffer());
    assert!(
        last.contains("any key closes") && last.contains("↑ end"),
        "{last}"
    );
    key(&mut app, KeyCode::Char('x'));
    assert!(!app.help);
}
