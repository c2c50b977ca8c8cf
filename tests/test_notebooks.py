"""Every chapter is a well-formed notebook, runs in the smoke profile, and its claims pass."""

import jupytext
import pytest

from conftest import ROOT
from horizon_lib.notebooks import PROFILES, ParameterError, discover, load_chapter

CHAPTERS = discover(ROOT)


def test_every_book_page_is_in_the_toc():
    import yaml

    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    files = {toc["root"]} | {c["file"] for part in toc["parts"] for c in part["chapters"]}
    pages = {str(p.relative_to(ROOT).with_suffix("")) for p in (ROOT / "book").rglob("*.md")}
    assert pages - files == set(), "pages that no reader can reach"
    assert {f for f in files if f.startswith("book/")} - pages == set(), (
        "toc entries without a page")


def test_there_are_chapters_and_each_is_in_the_toc():
    import yaml

    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    files = {c["file"] for part in toc["parts"] for c in part["chapters"]}
    assert CHAPTERS
    for name in CHAPTERS:
        assert f"notebooks/{name}" in files, f"{name} is missing from book/_toc.yml"


@pytest.mark.parametrize("name", sorted(CHAPTERS))
def test_header_parameters_and_profiles(name):
    path = CHAPTERS[name]
    nb = jupytext.read(path)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert nb.metadata["jupytext"]["text_representation"]["format_name"] == "myst"
    assert "horizon" in nb.metadata["jupytext"]["notebook_metadata_filter"]
    chapter = load_chapter(path)
    assert chapter.defaults, "a cell tagged 'parameters' with literal values"
    assert {"smoke", "paper"} <= set(chapter.profiles)
    for profile in PROFILES:
        chapter.values(profile)  # every profile's values lie in their domains
    for spec in chapter.specs.values():
        assert {"meaning", "unit", "effect"} <= set(spec)
    text = path.read_text()
    assert "claim(" in text, "every chapter ends with a claim cell"
    assert "parameter_table(" in text, "every chapter shows its generated parameter table"
    assert "use_book_style()" in text, "every chapter uses the book's one figure style"


CODE_WIDTH = 80  # characters of code the book's code column shows without scrolling


@pytest.mark.parametrize("name", sorted(CHAPTERS))
def test_chapter_code_fits_the_page(name):
    nb = jupytext.read(CHAPTERS[name])
    long = [line for cell in nb.cells if cell.cell_type == "code"
            for line in cell.source.splitlines() if len(line) > CODE_WIDTH]
    assert not long, f"{len(long)} code lines over {CODE_WIDTH} characters: {long[:3]}"


#: The claims that the smoke profile does not reproduce, each with its finding in the chapter.
#: Any other "not reproduced" is a regression, and a listed claim that passes again must leave
#: this list (the ledger page of the smoke build shows what was measured for each).
SMOKE_FINDINGS = {
    "constgate": {"constgate-norm-bound-layernorm"},
    "exact_vs_first_order": {"appendix-c-first-order-decays-faster-LSTM"},
    "experiment_envelopes": {"constgate-tau", "learned-gates-broader-spectra"},
    "experiment_master": {
        *(f"mean-follows-envelope-{c}" for c in ("constgate", "sharedgate", "diaggate", "lstm")),
        *(f"master-slope-{c}" for c in ("constgate", "sharedgate", "diaggate", "gru", "lstm")),
    },
    # smoke's lag grid is too short for a regime fit (6 lags needed), so nothing is compared
    "experiment_optimizers": {f"optimizer-keeps-decay-class-{o}" for o in ("adamw", "rmsprop")},
    "experiment_window": {"window-order-follows-envelope"},
}


def test_the_smoke_findings_name_real_chapters():
    assert set(SMOKE_FINDINGS) <= set(CHAPTERS)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CHAPTERS))
def test_chapter_runs_in_smoke_profile_and_its_claims_pass(name, smoke_build):
    _, report = smoke_build
    run = next(r for r in report.runs if r.name == name)
    assert run.status == "ok", run.error
    rows = [r for r in report.rows if r["notebook"] == name]
    assert rows, f"{name} recorded no claim"
    for row in rows:
        assert row["verdict"] in ("pass", "not reproduced"), row
        assert row["profile"] == "smoke" and row["library_version"]
        if row["verdict"] == "not reproduced":
            assert row["finding"], f"{row['claim']}: not reproduced without a finding"
    found = {r["claim"] for r in rows if r["verdict"] == "not reproduced"}
    expected = SMOKE_FINDINGS.get(name, set())
    assert found - expected == set(), "claims that passed before and are not reproduced now"
    assert expected - found == set(), "listed findings that now pass: take them off the list"


def test_domain_violations_name_chapter_parameter_and_range():
    chapter = load_chapter(CHAPTERS["concentration"])
    with pytest.raises(ParameterError, match=r"concentration: parameter 'alphas'.*\(1, 2\]"):
        chapter.values("book", {"alphas": 0.5})
    with pytest.raises(ParameterError, match=r"'n_grid'.*\[1, ∞\)"):
        chapter.values("book", {"n_grid": [0, 10]})
    with pytest.raises(ParameterError, match=r"'replicates'.*integer"):
        chapter.values("book", {"replicates": -3})
    with pytest.raises(ParameterError, match=r"unknown parameter 'alpha'.*alphas"):
        chapter.values("book", {"alpha": 1.5})
    with pytest.raises(ParameterError, match="profile"):
        chapter.values("huge")
    assert chapter.values("book", {"alphas": 1.5})["alphas"] == [1.5]  # scalar → one-element list
    # a value that must be one of another parameter's values (front matter `one_of`)
    with pytest.raises(ParameterError, match=r"'detect_n' = 50 is not one of n_grid = \[.*"
                                             r"\(allowed: integer in \[1, ∞\) and one of the "
                                             r"values of n_grid\)"):
        chapter.values("book", {"detect_n": 50})
    assert chapter.values("book", {"detect_n": 50, "n_grid": [10, 50]})["detect_n"] == 50


def test_command_line_values_read_as_a_reader_means_them():
    from horizon_lib.notebooks import parse_value

    chapter = load_chapter(CHAPTERS["concentration"])
    # YAML 1.1 reads "1e4" as a string; the command line reads it as the integer it writes
    assert chapter.values("book", {"replicates": parse_value("1e4")})["replicates"] == 10_000
    assert parse_value("1.5e-3") == 0.0015 and parse_value("1.0e3") == 1000.0
    assert parse_value("[1.2, 1.5]") == [1.2, 1.5] and parse_value("cuda") == "cuda"
    assert parse_value("[1e2, 1e4]") == [100, 10_000]             # inside lists and mappings
    assert parse_value("{train.epochs: 4e1}") == {"train.epochs": 40}
    assert parse_value("1e23") == 10**23 and parse_value("'1e4'") == "1e4"  # exact; quoted
    assert type(parse_value("1e4")) is int and type(parse_value("1e-3")) is float
    with pytest.raises(ParameterError, match=r"'\{hidden: 8' is not valid YAML"):
        parse_value("{hidden: 8")


def test_parameter_table_has_a_row_per_parameter_with_value_and_unit():
    from horizon_lib.notebooks import parameter_table

    chapter = load_chapter(CHAPTERS["concentration"])
    table = parameter_table(CHAPTERS["concentration"], {"replicates": 17})
    lines = table.strip().splitlines()
    assert lines[0].count("|") == 6 and len(lines) == 2 + len(chapter.defaults)
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in lines[2:]}
    assert rows["`replicates`"] == "`17` replicates"  # the value in force, then the unit
    assert rows["`alphas`"] == f"`{chapter.defaults['alphas']!r}`"  # unit "—" is left out


def test_a_mapping_parameter_takes_a_mapping_and_says_so():
    chapter = load_chapter(CHAPTERS["experiment_window"])
    assert chapter.defaults["experiment_changes"] == {}
    values = chapter.values("book", {"experiment_changes": {"train.epochs": 3}})
    assert values["experiment_changes"] == {"train.epochs": 3}
    with pytest.raises(ParameterError, match=r"'experiment_changes' = 3 is not a mapping.*"
                                             r"\(allowed: a mapping of names to values"):
        chapter.values("book", {"experiment_changes": 3})
    # the names come from the library (keys_from), so a typo stops before any kernel starts
    with pytest.raises(ParameterError, match=r"unknown name 'train\.epoch' "
                                             r"\(did you mean 'train\.epochs'\?\)"):
        chapter.values("book", {"experiment_changes": {"train.epoch": 3}})


def test_keys_from_must_name_a_function_that_lists_the_names():
    from horizon_lib.notebooks import Domain

    domain = Domain.from_spec({"keys_from": "horizon_lib.experiment_config:setting_names"}, {})
    assert "train.epochs" in domain.keys and domain.violation({"hidden": 8}) is None
    with pytest.raises(ParameterError, match="unreadable keys_from 'horizon_lib:nothing_here'"):
        Domain.from_spec({"keys_from": "horizon_lib:nothing_here"}, {})


@pytest.mark.slow
def test_the_experiment_chapters_cache_their_results_in_the_build_they_run_for(smoke_build):
    build, _ = smoke_build
    cached = list((build / "results").rglob("*"))
    assert any(p.is_file() for p in cached), "the smoke experiment's results live in <build>"


def test_default_results_dir_follows_the_runner(monkeypatch, tmp_path):
    from horizon_lib.experiment import default_results_dir
    from horizon_lib.runner import RESULTS_ENV

    monkeypatch.delenv(RESULTS_ENV, raising=False)
    assert default_results_dir() == ROOT / "_build" / "results"
    monkeypatch.setenv(RESULTS_ENV, str(tmp_path / "r"))
    assert default_results_dir() == tmp_path / "r"


def test_chapters_read_a_results_folder_the_user_names(monkeypatch, tmp_path):
    from horizon_lib.runner import RESULTS_ENV, kernel_results_dir

    monkeypatch.delenv(RESULTS_ENV, raising=False)
    assert kernel_results_dir(tmp_path / "b") == str((tmp_path / "b" / "results").resolve())
    monkeypatch.setenv(RESULTS_ENV, str(tmp_path / "cluster"))
    assert kernel_results_dir(tmp_path / "b") == str(tmp_path / "cluster")
