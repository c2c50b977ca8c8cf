"""The README's commands and code are the ones that work."""

import re

from conftest import ROOT

README = (ROOT / "README.md").read_text()


def test_the_library_example_runs_and_finds_a_window_that_grows_with_n(capsys):
    section = README.split("## Use the library", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    alpha, windows = re.match(r"α̂ = ([\d.]+), H_N = \[(.*)\]", out).groups()
    h = [float(v) for v in windows.split(",")]
    assert abs(float(alpha) - 1.5) < 0.05        # 10⁴ SαS draws: sd 0.017 over 40 seeds
    assert 0 < h[0] < h[1] < h[2] < 200                    # inside the tabulated lags


def test_the_cli_lines_parse_and_name_real_chapters():
    import shlex

    from horizon_lib.cli import _parser
    from horizon_lib.notebooks import discover

    chapters = set(discover(ROOT))
    lines = re.findall(r"^\.venv/bin/horizon (.*)$", README, re.M)
    assert len(lines) >= 5
    for line in lines:
        args = _parser().parse_args(shlex.split(line, comments=True))  # exits on a bad option
        if args.command == "run":
            assert set(args.notebooks) <= chapters, line
