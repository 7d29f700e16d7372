//! Validation of the flow: phases, waves (dependency order, size, dual-write limits), steps (ids,
//! `needs`, per-kind references) and `${...}` references.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::model::{EnvKind, MapId, MapSelection, Runbook, Step, StepId, StepKind};
use super::tree::Pos;
use super::tree::{Node, Seg};
use super::validate::{
    Ctx, MAX_ROWS_PER_COMPANY, MAX_WAVE_MAPS, is_id, kind_env, needs_initial_sync, rows_per_company,
    step_index, unknown_env, unknown_map,
};
use super::vars::{self, EnvLookup, Piece, VarRef};

pub(crate) fn phases(rb: &Runbook, cx: &mut Ctx<'_>) {
    use Seg::{Idx, Key};
    if rb.phases.is_empty() {
        cx.error(
            cx.at(&[Key("phases")]),
            "no-phases",
            "no phases are declared".into(),
            None,
        );
    }
    // Ids of phases, waves and steps share one namespace: plan ids are built from them.
    let mut seen: HashMap<String, u32> = HashMap::new();
    let mut claim = |cx: &mut Ctx<'_>, id: &str, path: &[Seg<'_>], what: &str| {
        let pos = cx.at(path);
        if !is_id(id) {
            let hint = "use letters, digits, `-` and `_`".to_owned();
            cx.error(
                pos,
                "invalid-id",
                format!("{what} id `{id}` is not [A-Za-z0-9_-]+"),
                hint,
            );
        }
        if let Some(line) = seen.get(id) {
            let hint = "ids of phases, waves and steps must be unique in the runbook".to_owned();
            cx.error(
                pos,
                "duplicate-id",
                format!("{what} id `{id}` is already used at line {line}"),
                hint,
            );
        } else {
            seen.insert(id.to_owned(), pos.line);
        }
    };
    let index = step_index(rb);
    // Wave number of each map synced by a wave, for the dependency order.
    let mut wave_of: HashMap<&MapId, (usize, &str)> = HashMap::new();
    let mut wave_no = 0usize;
    // Maps an earlier `dualwrite.run` (with its initial sync) brought to the target.
    let mut synced_by_steps: HashSet<MapId> = HashSet::new();
    for (pi, phase) in rb.phases.iter().enumerate() {
        let pp = [Key("phases"), Idx(pi)];
        claim(cx, &phase.id, &[pp[0], pp[1], Key("id")], "phase");
        match (&phase.steps, &phase.waves) {
            (Some(_), Some(_)) | (None, None) => cx.error(
                cx.at(&pp),
                "phase-shape",
                format!("phase `{}` must have either `steps` or `waves`", phase.id),
                "a phase is a list of steps, or a list of waves of maps; split it in two".to_owned(),
            ),
            _ => {}
        }
        if phase.gate.is_some() && phase.waves.is_none() {
            let pos = cx.key(&pp, "gate");
            cx.warn(
                pos,
                "gate-without-waves",
                "a gate is checked only between waves; it is ignored here".into(),
                None,
            );
        }
        for (wi, wave) in phase.waves.iter().flatten().enumerate() {
            wave_no += 1;
            let wp = [pp[0], pp[1], Key("waves"), Idx(wi)];
            claim(cx, &wave.id, &[wp[0], wp[1], wp[2], wp[3], Key("id")], "wave");
            if wave.maps.is_empty() {
                cx.error(
                    cx.at(&wp),
                    "empty-wave",
                    format!("wave `{}` has no maps", wave.id),
                    None,
                );
            }
            if wave.maps.len() > MAX_WAVE_MAPS {
                cx.warn(
                    cx.at(&[wp[0], wp[1], wp[2], wp[3], Key("maps")]),
                    "wave-too-large",
                    format!(
                        "wave `{}` has {} maps (more than {MAX_WAVE_MAPS})",
                        wave.id,
                        wave.maps.len()
                    ),
                    "large waves are hard to watch and to recover; split it".to_owned(),
                );
            }
            if wave.concurrency == Some(0) {
                let pos = cx.at(&[wp[0], wp[1], wp[2], wp[3], Key("concurrency")]);
                cx.error(
                    pos,
                    "invalid-value",
                    "concurrency must be at least 1".into(),
                    None,
                );
            }
            for (mi, map) in wave.maps.iter().enumerate() {
                let pos = cx.at(&[wp[0], wp[1], wp[2], wp[3], Key("maps"), Idx(mi)]);
                if !unknown_map(rb, cx, map, pos) {
                    continue;
                }
                if let Some((_, other)) = wave_of.get(map) {
                    let msg = format!("map `{map}` is already synced in wave `{other}`");
                    cx.error(
                        pos,
                        "duplicate-map",
                        msg,
                        "a map's initial sync runs once".to_owned(),
                    );
                    continue;
                }
                wave_of.insert(map, (wave_no, wave.id.as_str()));
                for (company, rows) in rows_per_company(rb, map).unwrap_or_default() {
                    if rows > MAX_ROWS_PER_COMPANY {
                        cx.warn(
                            pos,
                            "dual-write-limit",
                            format!(
                                "map `{map}` has about {rows} rows for {company}; dual-write's initial sync takes at most {MAX_ROWS_PER_COMPANY} per legal entity"
                            ),
                            "load it by DMF beforehand (`initial_sync: none`) or split it by company".to_owned(),
                        );
                    }
                }
            }
            // Dependency order, once the whole wave is known (a dependency in the same wave is too late).
            for (mi, map) in wave.maps.iter().enumerate() {
                let Some(spec) = rb.maps.get(map) else { continue };
                for dep in &spec.depends_on {
                    if !rb.maps.contains_key(dep) || !needs_initial_sync(rb, dep) {
                        continue;
                    }
                    let placed = wave_of.get(dep).copied();
                    let ok = placed.is_some_and(|(n, _)| n < wave_no);
                    if !ok {
                        let pos = cx.at(&[wp[0], wp[1], wp[2], wp[3], Key("maps"), Idx(mi)]);
                        let where_ = match placed {
                            Some((n, w)) if n == wave_no => format!("is in the same wave `{w}`"),
                            Some((_, w)) => format!("comes later, in wave `{w}`"),
                            None => "is in no earlier wave".to_owned(),
                        };
                        cx.error(
                            pos,
                            "dependency-order",
                            format!("map `{map}` depends on `{dep}`, which {where_}"),
                            format!("sync `{dep}` in an earlier wave, or mark it `initial_sync: none` if it is loaded beforehand"),
                        );
                    }
                }
            }
        }
        for (si, step) in phase.steps.iter().flatten().enumerate() {
            let sp = [pp[0], pp[1], Key("steps"), Idx(si)];
            claim(
                cx,
                step.id.as_str(),
                &[sp[0], sp[1], sp[2], sp[3], Key("id")],
                "step",
            );
            step_needs(rb, cx, step, &sp, (pi, si), &index);
            step_kind(rb, cx, step, &sp);
            live_without_initial_sync(rb, cx, step, &sp, &wave_of, &mut synced_by_steps);
        }
    }
}

/// A `dualwrite.run` with `initial_sync: false` switches maps to live sync as they are: a map that
/// needs dual-write's initial sync and had none before (no earlier wave, no earlier `dualwrite.run`
/// with its initial sync) would go live with none of its existing rows in the target.
fn live_without_initial_sync(
    rb: &Runbook,
    cx: &mut Ctx<'_>,
    step: &Step,
    sp: &[Seg<'_>; 4],
    wave_of: &HashMap<&MapId, (usize, &str)>,
    synced_by_steps: &mut HashSet<MapId>,
) {
    use Seg::{Idx, Key};
    let StepKind::DualwriteRun(run) = &step.kind else {
        return;
    };
    let maps = run.maps.resolve(rb.maps.keys());
    if run.initial_sync.unwrap_or(true) {
        synced_by_steps.extend(maps);
        return;
    }
    for (mi, map) in maps.iter().enumerate() {
        if !rb.maps.contains_key(map)
            || !needs_initial_sync(rb, map)
            || wave_of.contains_key(map)
            || synced_by_steps.contains(map)
        {
            continue;
        }
        let pos = match &run.maps {
            MapSelection::List(_) => cx.at(&[sp[0], sp[1], sp[2], sp[3], Key("maps"), Idx(mi)]),
            MapSelection::All(_) => cx.at(&[sp[0], sp[1], sp[2], sp[3], Key("maps")]),
        };
        cx.error(
            pos,
            "live-without-initial-sync",
            format!(
                "step `{}` switches map `{map}` to live sync (`initial_sync: false`), but no earlier wave or \
                 `dualwrite.run` initially syncs it: its existing rows would never reach the target",
                step.id
            ),
            format!(
                "sync `{map}` in an earlier wave, or mark the map `initial_sync: none` if it is loaded beforehand (e.g. by DMF)"
            ),
        );
    }
}

fn step_needs(
    rb: &Runbook,
    cx: &mut Ctx<'_>,
    step: &Step,
    sp: &[Seg<'_>; 4],
    at: (usize, usize),
    index: &BTreeMap<&str, (usize, usize)>,
) {
    for (ni, need) in step.needs.iter().enumerate() {
        let pos = cx.at(&[sp[0], sp[1], sp[2], sp[3], Seg::Key("needs"), Seg::Idx(ni)]);
        match index.get(need.as_str()) {
            None => {
                let hint = super::diag::did_you_mean(need.as_str(), index.keys().copied()).map_or_else(
                    || "name a step declared earlier".to_owned(),
                    |s| format!("did you mean `{s}`?"),
                );
                cx.error(pos, "unknown-step", format!("unknown step `{need}`"), hint);
            }
            Some(&there) if there == at => {
                cx.error(
                    pos,
                    "dependency-cycle",
                    format!("step `{need}` needs itself"),
                    None,
                );
            }
            Some(&(p, _)) if p > at.0 => {
                let phase = rb.phases.get(p).map_or("", |ph| ph.id.as_str());
                cx.error(
                    pos,
                    "needs-forward",
                    format!(
                        "step `{}` needs `{need}`, which runs later, in phase `{phase}`",
                        step.id
                    ),
                    "phases run in order: a step can only need steps of its own or an earlier phase"
                        .to_owned(),
                );
            }
            Some(&there) if there > at => cx.error(
                pos,
                "needs-forward",
                format!("step `{}` needs `{need}`, which is listed after it", step.id),
                "steps of a phase run in listed order; move the step after the one it needs".to_owned(),
            ),
            Some(_) => {}
        }
    }
}

fn step_kind(rb: &Runbook, cx: &mut Ctx<'_>, step: &Step, sp: &[Seg<'_>; 4]) {
    use Seg::{Idx, Key};
    let path = |k: &'static str| [sp[0], sp[1], sp[2], sp[3], Key(k)];
    for (field, env, want) in kind_env(&step.kind) {
        let pos = cx.at(&path(field));
        if unknown_env(rb, cx, env, pos)
            && let (Some(want), Some(e)) = (want, rb.environments.get(env))
            && e.kind != want
        {
            let want_name = match want {
                EnvKind::Fno => "F&O".to_owned(),
                other => format!("{other:?}"),
            };
            let msg = format!(
                "`{}` needs a{} {want_name} environment; `{env}` is {:?}",
                step.kind_name(),
                if matches!(want, EnvKind::Fno | EnvKind::Adls) {
                    "n"
                } else {
                    ""
                },
                e.kind
            );
            cx.error(pos, "wrong-env-kind", msg.to_lowercase(), None);
        }
    }
    if let Some(MapSelection::List(list)) = step.kind.maps() {
        for (mi, map) in list.iter().enumerate() {
            let pos = cx.at(&[sp[0], sp[1], sp[2], sp[3], Key("maps"), Idx(mi)]);
            unknown_map(rb, cx, map, pos);
        }
    }
    let mut check = StepCheck { rb, cx, step, sp };
    step.kind.spec().validate(&mut check);
}

/// What a step kind's own checks ([`Kind::validate`](super::steps::Kind::validate)) report
/// through: positions of the step's fields, and the runbook to check references against.
pub struct StepCheck<'r, 'c, 'a> {
    pub rb: &'r Runbook,
    cx: &'c mut Ctx<'a>,
    step: &'r Step,
    sp: &'r [Seg<'r>; 4],
}

impl StepCheck<'_, '_, '_> {
    fn pos(&self, field: &'static str) -> Pos {
        let sp = self.sp;
        self.cx.at(&[sp[0], sp[1], sp[2], sp[3], Seg::Key(field)])
    }

    /// The step's id.
    pub fn id(&self) -> &StepId {
        &self.step.id
    }

    /// An error at the step's `field`.
    pub fn error(
        &mut self,
        field: &'static str,
        code: &'static str,
        msg: String,
        hint: impl Into<Option<String>>,
    ) {
        let pos = self.pos(field);
        self.cx.error(pos, code, msg, hint);
    }

    /// A warning at the step's `field`.
    pub fn warn(
        &mut self,
        field: &'static str,
        code: &'static str,
        msg: String,
        hint: impl Into<Option<String>>,
    ) {
        let pos = self.pos(field);
        self.cx.warn(pos, code, msg, hint);
    }

    /// `conflicting-fields` at the step unless exactly one of the two fields is given.
    pub fn exactly_one(&mut self, a: bool, b: bool, names: (&str, &str)) {
        if a == b {
            let what = if a { "both" } else { "neither" };
            let msg = format!(
                "step `{}` has {what} of `{}` and `{}`",
                self.step.id, names.0, names.1
            );
            let hint = format!("give exactly one of `{}` and `{}`", names.0, names.1);
            let pos = self.cx.at(self.sp);
            self.cx.error(pos, "conflicting-fields", msg, hint);
        }
    }

    /// `unknown-map` at `field` when the runbook has no such map; true when it has.
    pub fn known_map(&mut self, field: &'static str, map: &MapId) -> bool {
        let pos = self.pos(field);
        unknown_map(self.rb, self.cx, map, pos)
    }

    /// `unknown-env` at `field` when the runbook has no such environment; true when it has.
    pub fn known_env(&mut self, field: &'static str, env: &str) -> bool {
        let pos = self.pos(field);
        unknown_env(self.rb, self.cx, env, pos)
    }

    /// `unknown-env` at `kind` when the runbook declares no dual-write environment.
    pub fn needs_dualwrite_env(&mut self) {
        if !self
            .rb
            .environments
            .values()
            .any(|e| e.kind == EnvKind::Dualwrite)
        {
            let hint = "declare an environment of `kind: dualwrite`".to_owned();
            self.error(
                "kind",
                "unknown-env",
                "no dual-write environment to run this step".into(),
                hint,
            );
        }
    }
}

/// Checks every `${...}`: syntax, environment variables set, captures of earlier steps.
pub(crate) fn variables(rb: &Runbook, cx: &mut Ctx<'_>, env: &dyn EnvLookup, strict: bool) {
    // Captures declared by each step, and each step's position in listed order.
    let mut captures: HashMap<&str, (usize, Vec<&str>)> = HashMap::new();
    for (order, step) in rb
        .phases
        .iter()
        .flat_map(|p| p.steps.iter().flatten())
        .enumerate()
    {
        let names = step.kind.spec().captures();
        captures.entry(step.id.as_str()).or_insert((order, names));
    }
    // A client secret's variable may be given as a file instead (`NAME_FILE`, read when the run starts).
    let secrets = super::validate::secret_vars(rb);
    let with_files = |n: &str| {
        env.get(n).or_else(|| {
            secrets
                .contains(n)
                .then(|| env.get(&super::validate::secret_file_var(n)))
                .flatten()
        })
    };
    let env: &dyn EnvLookup = &with_files;
    let tree = cx.tree;
    // Outside steps only environment and run references make sense: use an order before every step.
    scan(tree, cx, env, strict, &captures, None, true);
    let mut order = 0usize;
    for (pi, phase) in rb.phases.iter().enumerate() {
        for si in 0..phase.steps.as_ref().map_or(0, Vec::len) {
            if let Some(node) = tree.at(&[Seg::Key("phases"), Seg::Idx(pi), Seg::Key("steps"), Seg::Idx(si)])
            {
                scan(node, cx, env, strict, &captures, Some(order), false);
            }
            order += 1;
        }
    }
}

fn scan(
    node: &Node,
    cx: &mut Ctx<'_>,
    env: &dyn EnvLookup,
    strict: bool,
    captures: &HashMap<&str, (usize, Vec<&str>)>,
    step_order: Option<usize>,
    skip_steps: bool,
) {
    let mut found: Vec<(super::tree::Pos, String)> = Vec::new();
    walk_values(node, skip_steps, &mut |n| {
        if let Some(s) = n.as_str()
            && s.contains('$')
        {
            found.push((n.pos, s.to_owned()));
        }
    });
    for (pos, text) in found {
        let pieces = match vars::parse(&text) {
            Ok(p) => p,
            Err(e) => {
                cx.error(pos, "invalid-variable", e.to_string(), None);
                continue;
            }
        };
        for piece in pieces {
            let Piece::Var { var, .. } = piece else { continue };
            match var {
                VarRef::Env(name) if env.get(&name).is_none() => {
                    let msg = format!("environment variable `{name}` is not set");
                    let hint = format!("export {name}=... before running; `run` refuses unset variables");
                    if strict {
                        cx.error(pos, "unset-variable", msg, hint);
                    } else {
                        cx.warn(pos, "unset-variable", msg, hint);
                    }
                }
                VarRef::Step { step, name } => match (captures.get(step.as_str()), step_order) {
                    (None, _) => {
                        let hint = "`${steps.<id>.<name>}` names an earlier step's capture".to_owned();
                        cx.error(
                            pos,
                            "unknown-step",
                            format!("`${{steps.{step}.{name}}}`: no step `{step}`"),
                            hint,
                        );
                    }
                    (Some(_), None) => cx.error(
                        pos,
                        "unknown-step",
                        format!("`${{steps.{step}.{name}}}` is used outside a step"),
                        "step captures exist only while the run executes steps".to_owned(),
                    ),
                    (Some((at, _)), Some(me)) if *at >= me => cx.error(
                        pos,
                        "needs-forward",
                        format!("`${{steps.{step}.{name}}}` refers to a step that has not run yet"),
                        "a step can only read captures of steps listed before it".to_owned(),
                    ),
                    // Every step has its start and finish times (RFC 3339) once it ran.
                    (Some((_, names)), _)
                        if !names.contains(&name.as_str())
                            && !matches!(name.as_str(), "started_at" | "finished_at") =>
                    {
                        cx.error(
                            pos,
                            "unknown-capture",
                            format!("step `{step}` has no capture `{name}`"),
                            "add it under the step's `capture:` (an http step)".to_owned(),
                        );
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }
}

/// Scalar values (not keys) under `node`; with `skip_steps`, not descending into phases' `steps`.
fn walk_values<'a>(node: &'a Node, skip_steps: bool, f: &mut dyn FnMut(&'a Node)) {
    match &node.value {
        super::tree::Value::Scalar(_) => f(node),
        super::tree::Value::Seq(items) => items.iter().for_each(|n| walk_values(n, skip_steps, f)),
        super::tree::Value::Map(entries) => {
            for (k, v) in entries {
                if skip_steps && k.as_str() == Some("steps") {
                    continue;
                }
                walk_values(v, skip_steps, f);
            }
        }
        super::tree::Value::Null => {}
    }
}
