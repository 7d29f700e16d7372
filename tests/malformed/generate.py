"""Generates the malformed runbooks: each case marks the offending node with @@ in its text; the marker's
line and column become the file's `# expect: LINE:COL CODE` header (checked by tests/runbook_malformed.rs).
Run from this directory: python3 generate.py"""
import os
BASE = """runbook: sample
version: 1.0.0
environments:
  fno:
    kind: fno
    url: ${FNO_URL}
    auth:
      tenant: t
      client_id: c
      client_secret: ${FNO_SECRET}
  dataverse:
    kind: dataverse
    url: ${DV_URL}
  dualwrite:
    kind: dualwrite
    link: [fno, dataverse]
maps:
  companies:
    source: fno:Companies
    target: dataverse:cdm_companies
  customers:
    source: fno:CustomersV3
    target: dataverse:accounts
    depends_on: [companies]
phases:
  - id: freeze
    steps:
      - id: announce
        kind: manual
        title: Stop posting
  - id: sync
    gate: { parity: true }
    waves:
      - id: wave-1
        maps: [companies]
      - id: wave-2
        maps: [customers]
  - id: live
    steps:
      - id: watch
        kind: monitor
        every: 5m
        for: 1h
        maps: all
"""
def rep(old, new, text=BASE):
    assert old in text, old
    return text.replace(old, new, 1)
cases = {
 "yaml-unclosed-bracket": ("yaml-syntax", rep("    link: [fno, dataverse]\n", "    link: [fno, dataverse\n  x@@: 1\n")),
 "duplicate-top-key": ("duplicate-key", rep("version: 1.0.0\n", "version: 1.0.0\n@@version: 1.0.1\n")),
 "duplicate-map-key": ("duplicate-key", rep("    target: dataverse:accounts\n", "    target: dataverse:accounts\n    @@target: dataverse:contacts\n")),
 "unknown-top-field": ("unknown-field", rep("maps:\n", "@@phase: x\nmaps:\n")),
 "unknown-map-field": ("unknown-field", rep("    depends_on: [companies]\n", "    @@dependson: [companies]\n")),
 "unknown-step-field": ("unknown-field", rep("        title: Stop posting\n", "        title: Stop posting\n        @@checklst: [a]\n")),
 "unknown-step-kind": ("unknown-step-kind", rep("        kind: manual\n", "        kind: @@dmf.exprot\n")),
 "unknown-env-field": ("unknown-field", rep("    url: ${DV_URL}\n", "    @@urll: ${DV_URL}\n")),
 "duplicate-step-id": ("duplicate-id", rep("      - id: watch\n", "      - id: @@announce\n")),
 "duplicate-phase-id": ("duplicate-id", rep("  - id: live\n", "  - id: @@freeze\n")),
 "wave-unknown-map": ("unknown-map", rep("        maps: [customers]\n", "        maps: [@@customer]\n")),
 "depends-on-unknown-map": ("unknown-map", rep("    depends_on: [companies]\n", "    depends_on: [@@company]\n")),
 "step-unknown-map": ("unknown-map", rep("        maps: all\n", "        maps: [companies, @@vendors]\n")),
 "map-unknown-env": ("unknown-env", rep("    source: fno:Companies\n", "    source: @@fnoo:Companies\n")),
 "dmf-unknown-env": ("unknown-env", rep("        title: Stop posting\n", "        title: Stop posting\n      - id: export\n        kind: dmf.export\n        env: @@erp\n        definition_group: G\n")),
 "needs-unknown-step": ("unknown-step", rep("        for: 1h\n", "        for: 1h\n        needs: [@@anounce]\n")),
 "map-dependency-cycle": ("dependency-cycle", rep("    depends_on: [companies]\n", "    depends_on: @@[companies]\n", rep("    target: dataverse:cdm_companies\n", "    target: dataverse:cdm_companies\n    depends_on: [customers]\n"))),
 "dependency-same-wave": ("dependency-order", rep("        maps: [companies]\n      - id: wave-2\n        maps: [customers]\n", "        maps: [companies, @@customers]\n")),
 "dependency-later-wave": ("dependency-order", rep("        maps: [companies]\n      - id: wave-2\n        maps: [customers]\n", "        maps: [@@customers]\n      - id: wave-2\n        maps: [companies]\n")),
 "needs-later-phase": ("needs-forward", rep("        title: Stop posting\n", "        title: Stop posting\n        needs: [@@watch]\n")),
 "needs-later-step": ("needs-forward", rep("        title: Stop posting\n", "        title: Stop posting\n        needs: [@@second]\n      - id: second\n        kind: manual\n")),
 "needs-itself": ("dependency-cycle", rep("        title: Stop posting\n", "        title: Stop posting\n        needs: [@@announce]\n")),
 "literal-secret": ("literal-secret", rep("client_secret: ${FNO_SECRET}", "client_secret: @@hunter2-hunter2")),
 "bad-step-timeout": ("invalid-duration", rep("        title: Stop posting\n", "        title: Stop posting\n        timeout: @@10 minutes\n")),
 "bad-monitor-every": ("invalid-duration", rep("        every: 5m\n", "        every: @@5min\n")),
 "bad-freeze-timestamp": ("invalid-timestamp", rep("environments:\n", "freeze_window:\n  start: 2026-11-27T18:00:00Z\n  end: @@Monday morning\nenvironments:\n")),
 "freeze-window-backwards": ("freeze-window-order", rep("environments:\n", "freeze_window:\n  start: 2026-11-30T08:00:00Z\n  end: @@2026-11-27T18:00:00Z\nenvironments:\n")),
 "last-write-wins": ("last-write-wins", rep("    depends_on: [companies]\n", "    depends_on: [companies]\n    master: @@last_write_wins\n")),
 "wave-too-large": ("wave-too-large", rep("        maps: [customers]\n", "        maps: @@[customers, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10]\n", rep("maps:\n", "maps:\n" + "".join(f"  m{i}:\n    source: fno:E{i}\n    target: dataverse:e{i}\n" for i in range(1, 11))))),
 "dual-write-row-limit": ("dual-write-limit", rep("        maps: [customers]\n", "        maps: [@@customers]\n", rep("    depends_on: [companies]\n", "    depends_on: [companies]\n    companies: [USMF]\n    rows: 900000\n"))),
 "empty-file": ("empty-file", "@@# nothing but a comment\n\n"),
 "tab-indented": ("tab-indentation", rep("    kind: dataverse\n", "@@\tkind: dataverse\n")),
 "missing-phases": ("missing-field", BASE[:BASE.index("phases:")].replace("maps:\n", "@@maps:\n", 1)),
 "bad-runbook-name": ("invalid-name", rep("runbook: sample\n", "runbook: @@Sample Runbook\n")),
 "bad-version": ("invalid-version", rep("version: 1.0.0\n", "version: @@v1\n")),
 "phase-without-steps-or-waves": ("phase-shape", rep("  - id: live\n    steps:\n", "  - @@id: empty\n  - id: live\n    steps:\n")),
 "wait-with-both": ("conflicting-fields", rep("        title: Stop posting\n", "        title: Stop posting\n      - @@id: pause\n        kind: wait\n        for: 10m\n        until: 2026-11-28T00:00:00Z\n")),
 "capture-of-unknown-step": ("unknown-step", rep("        title: Stop posting\n", "        title: @@Stop posting ${steps.nope.token}\n")),
 "capture-not-declared": ("unknown-capture", rep("        title: Stop posting\n", "        title: Stop posting\n      - id: call\n        kind: http\n        url: https://example.test/x\n        capture: { job: /id }\n      - id: use\n        kind: manual\n        title: @@Job ${steps.call.token}\n")),
 "capture-used-before": ("needs-forward", rep("        title: Stop posting\n", "        title: @@Job ${steps.call.job}\n      - id: call\n        kind: http\n        url: https://example.test/x\n        capture: { job: /id }\n")),
 "bad-run-variable": ("invalid-variable", rep("        title: Stop posting\n", "        title: @@Run ${run.who}\n")),
 "unset-variable": ("unset-variable", rep("    url: ${DV_URL}\n", "    url: @@${UNSET_DV_URL}\n")),
 "endpoint-without-env": ("invalid-endpoint", rep("    target: dataverse:cdm_companies\n", "    target: @@cdm_companies\n")),
 "maps-keyword-typo": ("invalid-value", rep("      - id: watch\n", "      - @@id: watch\n", rep("        maps: all\n", "        maps: al\n"))),
 "nesting-bomb": ("too-deep", "runbook: " + "[" * 255 + "@@" + "[" * 45 + "]" * 300 + "\n"),
 "alias-bomb": ("alias-limit", "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: [@@*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"),
 "top-level-list": ("not-a-mapping", "@@- runbook: sample\n- version: 1.0.0\n"),
 "dmf-on-dataverse": ("wrong-env-kind", rep("        title: Stop posting\n", "        title: Stop posting\n      - id: export\n        kind: dmf.export\n        env: @@dataverse\n        definition_group: G\n")),
 "roundtrip-from-unrelated-env": ("unknown-env", rep("        for: 1h\n        maps: all\n", "        for: 1h\n        maps: all\n      - id: canary\n        kind: roundtrip\n        map: customers\n        from: @@dualwrite\n")),
 "map-in-two-waves": ("duplicate-map", rep("        maps: [customers]\n", "        maps: [customers, @@companies]\n")),
 "retries-not-a-number": ("invalid-type", rep("        title: Stop posting\n", "        title: Stop posting\n        retries: @@many\n")),
 "binary-garbage": ("yaml-syntax", "@@\x00\x01\x02garbage\x7f: [\n"),
 "kind-is-a-list": ("invalid-type", rep("        title: Stop posting\n", "        title: Stop posting\n      - id: export\n        kind: @@[dmf.export]\n        env: fno\n        definition_group: G\n")),
 "missing-field-in-a-later-step": ("missing-field", rep("        title: Stop posting\n", "        title: Stop posting\n        retries: many\n      - @@id: export\n        kind: dmf.export\n        env: fno\n")),
 "live-without-initial-sync": ("live-without-initial-sync", rep("        maps: all\n", "        maps: all\n      - id: go-live\n        kind: dualwrite.run\n        initial_sync: false\n        maps: [companies, @@customers]\n", rep("      - id: wave-2\n        maps: [customers]\n", ""))),
}
os.makedirs(".", exist_ok=True)
for name, (code, text) in sorted(cases.items()):
    i = text.index("@@")
    before = text[:i]
    line = before.count("\n") + 2  # +1 for 1-based, +1 for the header comment line
    col = i - (before.rfind("\n") + 1) + 1
    if code == "empty-file":
        line, col = 1, 1  # the whole file is the problem
    body = text.replace("@@", "", 1)
    with open(f"{name}.yaml", "w", newline="") as f:
        f.write(f"# expect: {line}:{col} {code}\n" + body)
print(len(cases))
