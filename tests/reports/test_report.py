"""``search report``: one offline HTML page with every section, rendered by headless Chromium."""

from __future__ import annotations

import json
import re
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner

from reports.html import SECTIONS
from search.cli import main
from search.report import MIN_TRIALS_FOR_IMPORTANCE, build_report_data, param_importances
from tests.reports.conftest import load_study

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PLOTLY_BANNER = re.compile(r"\* plotly\.js v\d+\.\d+\.\d+")
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.I)


def section(html: str, sid: str) -> str:
    match = re.search(rf'<section id="{re.escape(sid)}">(.*?)</section>', html, re.S)
    assert match, f"section {sid!r} missing"
    return match.group(1)


def without_plotly_js(html: str) -> str:
    """The page minus the inlined plotly.js bundle (its code holds URL strings, never loaded ones)."""
    start = PLOTLY_BANNER.search(html)
    assert start is not None
    script_open = html.rfind("<script", 0, start.start())
    script_close = html.index("</script>", start.end())
    return html[:script_open] + html[script_close + len("</script>") :]


def test_every_section_present_self_contained_and_offline(gated_report):
    html = gated_report["html"]
    positions = [html.index(f'<section id="{sid}">') for sid, _ in SECTIONS]
    assert positions == sorted(positions)
    assert len(PLOTLY_BANNER.findall(html)) == 1  # plotly.js embedded exactly once
    assert html.index("plotly.js v") < html.index("</head>")
    rest = without_plotly_js(html)
    assert not EXTERNAL.findall(rest), EXTERNAL.findall(rest)[:3]
    assert "<link" not in rest and not re.search(r"<script[^>]*\bsrc=", rest)
    # every figure div has its drawing script, and the figures the brief lists are all there
    divs = re.findall(r'<div id="(fig-[^"]+)" class="plotly-graph-div"', rest)
    assert len(divs) == rest.count("Plotly.newPlot(")
    for name in (
        "history",
        "pareto",
        "importance",
        "parallel",
        "walk-forward-1",
        "monthly",
        "trades",
        "pbo",
        "dsr",
        "dsr-candidates",
        "bootstrap",
    ):
        assert f"fig-{name}" in divs
    assert "has not been run" not in html


def test_gate_table_summary_and_provenance(gated_report):
    html = gated_report["html"]
    gate = gated_report["gate"]
    gates = section(html, "gates")
    for c in gate.candidates:
        assert f"<td>#{c.rank}</td><td>{c.number}</td>" in gates
        for failure in c.verdict.failures:
            assert failure.reason.replace("<", "&lt;").replace(">", "&gt;") in gates
        if c.verdict.rejected_at_stage == "overfitting":
            assert "not evaluated" in gates
    summary = section(html, "summary")
    study = load_study(gated_report["root"], "rep_multi")
    attrs = study.user_attrs
    for value in (attrs["data_manifest_hash"], f"study seed {attrs['seed']}", attrs["space_hash"], "nsga2"):
        assert value in summary
    assert "fill model version</th><td>" + attrs["fill_model_version"] in summary
    assert f"optuna {optuna.__version__}" in summary
    assert "24 complete, 0 failed" in summary
    pbo = json.loads((gate.folder / "pbo.json").read_text())
    assert f"PBO = <b>{pbo['pbo']:.3g}</b>" in section(html, "overfitting")
    assert "Pareto front" in section(html, "pareto") and "fig-pareto" in section(html, "pareto")


def test_the_page_opens_with_the_decision(gated_report):
    html = gated_report["html"]
    header = html[html.index("<header>") : html.index("</header>")]
    gate = gated_report["gate"]
    holdout = load_study(gated_report["root"], "rep_multi").user_attrs["holdout"]
    assert "<b>Data:</b> synthetic data, null market (no planted edge)" in header
    assert f"on the holdout {holdout['start']} .. {holdout['end']}" in header
    passed = [c for c in gate.candidates if c.verdict.passed]
    if passed:
        assert f"{len(passed)} of {len(gate.candidates)} candidate(s) passed" in header
        assert f"search confirm --study rep_multi --trial {passed[0].number}" in header
    else:
        assert f"No candidate passed: all {len(gate.candidates)} rejected" in header
    for c in gate.candidates:  # every candidate with its verdict and the reasons
        reason = c.verdict.summary().replace("<", "&lt;").replace(">", "&gt;")
        assert f"trial #{c.number} (rank {c.rank}): {reason}" in header
    assert html.index("Decision:") < html.index("<nav>")


def test_storage_passwords_never_reach_the_page(gated_report):
    study = load_study(gated_report["root"], "rep_multi")
    data = build_report_data(
        study, url="postgresql://farm:hunter2-secret@db.example/farm", studies_root=gated_report["root"]
    )
    storage = dict(data.summary)["storage"]
    assert "hunter2" not in storage and "farm:***@db.example" in storage


def test_report_is_attached_to_the_study_as_one_artifact(gated_report):
    from optuna.artifacts import get_all_artifact_meta

    from search.report import ReportConfig, make_report

    root = gated_report["root"]
    study = load_study(root, "rep_multi")
    artifact_id = study.user_attrs["report_artifact_id"]
    assert gated_report["report"].artifact_id == artifact_id
    metas = get_all_artifact_meta(study)
    assert [m.artifact_id for m in metas] == [artifact_id]
    assert metas[0].filename == "index.html" and metas[0].mimetype == "text/html"
    stored = root / "rep_multi" / "artifacts" / artifact_id
    assert stored.read_bytes() == gated_report["report"].path.read_bytes()
    # a new report replaces the attached one instead of piling up copies
    again = make_report(ReportConfig(study="rep_multi", out=root / "out2", studies_root=root))
    assert again.artifact_id == artifact_id
    assert len(get_all_artifact_meta(load_study(root, "rep_multi"))) == 1
    assert stored.read_bytes() == again.path.read_bytes()


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed at /usr/bin/chromium")
def test_report_renders_in_headless_chromium(gated_report, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    path = gated_report["report"].path.resolve()
    errors: list[str] = []
    requests: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(path.as_uri(), wait_until="load")
            page.wait_for_function(
                "[...document.querySelectorAll('.plotly-graph-div')].every(d => d.querySelector('.main-svg'))",
                timeout=20_000,
            )
            ids = page.evaluate("[...document.querySelectorAll('section')].map(s => s.id)")
            drawn = page.evaluate("document.querySelectorAll('.plotly-graph-div .main-svg').length")
            figures = page.evaluate("document.querySelectorAll('.plotly-graph-div').length")
            title = page.inner_text("#gates h2")
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert all(url.startswith(("file://", "data:", "blob:")) for url in requests), requests
    assert ids == [sid for sid, _ in SECTIONS]
    assert figures >= 11 and drawn >= figures
    assert title == "Gates"
    assert shot.stat().st_size > 100_000


def test_report_before_any_gate_run_points_to_the_command(ungated_report):
    html = ungated_report["html"]
    assert ungated_report["report"].gated is False
    for sid in ("trades", "overfitting", "gates"):
        assert "search gate --study rep_single" in section(html, sid)
    assert "Single-objective study" in section(html, "pareto")
    assert "Decision: none yet.</b> No candidate has been gated. Next: <code>search gate --study rep_single" in html
    walk = section(html, "walk-forward")
    assert "from their trial records" in walk and "fig-walk-forward-1" in walk
    assert "fig-monthly" in section(html, "monthly") and "fig-importance" in section(html, "importance")
    assert len(PLOTLY_BANNER.findall(html)) == 1


def test_importances_are_skipped_on_small_studies():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    study.optimize(lambda t: t.suggest_float("x", 0, 1) + t.suggest_int("n", 1, 3), n_trials=4)
    importances, note = param_importances(study, ["value"])
    assert (
        importances is None and f"at least {MIN_TRIALS_FOR_IMPORTANCE}" in str(note) and "has 4" in str(note)
    )
    study.optimize(lambda t: t.suggest_float("x", 0, 1) + t.suggest_int("n", 1, 3), n_trials=12)
    first, _ = param_importances(study, ["value"])
    second, _ = param_importances(study, ["value"])
    assert first is not None and set(first["value"]) == {"x", "n"}
    assert first == second  # seeded: the same study gives the same importances


def test_report_cli(ungated_report, monkeypatch, tmp_path):
    monkeypatch.setenv("FARM_STUDIES", str(ungated_report["root"]))
    runner = CliRunner()
    result = runner.invoke(
        main, ["report", "--study", "rep_single", "--out", str(tmp_path / "r"), "--no-attach"]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r" / "index.html").is_file()
    assert "no gate results yet" in result.output and "search gate --study rep_single" in result.output
    result = runner.invoke(main, ["report", "--study", "missing_study"])
    assert (
        result.exit_code == 2
        and "no study 'missing_study'" in result.output
        and "rep_single" in result.output
    )


def test_dashboard_shows_the_verdicts_and_serves_the_report(gated_report):
    """optuna-dashboard on the same storage: trial notes carry the verdicts, the report artifact downloads."""
    import threading
    import urllib.request
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    import optuna_dashboard

    from search.report import StudiesArtifactStore
    from search.study import open_storage, storage_url

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
            pass

    root = gated_report["root"]
    study = load_study(root, "rep_multi")
    artifact_id = study.user_attrs["report_artifact_id"]
    app = optuna_dashboard.wsgi(
        open_storage(storage_url(None, root)), artifact_store=StudiesArtifactStore(root)
    )
    server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        with urllib.request.urlopen(f"{base}/artifacts/{study._study_id}/{artifact_id}", timeout=10) as resp:
            body, content_type = resp.read(), resp.headers["Content-Type"]
        with urllib.request.urlopen(f"{base}/api/studies/{study._study_id}?after=0", timeout=10) as resp:
            detail = json.loads(resp.read())
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert content_type.startswith("text/html")
    assert body == (root / "rep_multi" / "artifacts" / artifact_id).read_bytes()
    assert [a["artifact_id"] for a in detail["artifacts"]] == [artifact_id]
    notes = {t["number"]: t["note"]["body"] for t in detail["trials"]}
    for c in gated_report["gate"].candidates:
        assert "search gate verdict" in notes[c.number]
        assert c.verdict.results[0].reason in notes[c.number]
    gated = {c.number for c in gated_report["gate"].candidates}
    assert all("search gate verdict" not in body for n, body in notes.items() if n not in gated)
