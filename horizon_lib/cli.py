"""``horizon``: run chapters, verify the paper's claims, build the book, print the ledger.

    horizon run NOTEBOOK... [--profile smoke|book|paper] [-p NAME VALUE]...
    horizon verify [--profile P] [--jobs N]
    horizon book [--profile P] [--jobs N] [--no-run]
    horizon claims
    horizon experiment [--profile P] [--set NAME VALUE]...

``--root`` and ``--build-dir`` go before or after the subcommand.

Bad input (an unknown notebook or parameter, a value outside its domain) is reported in one line
before any kernel starts, with exit status 2; failing claims or notebooks give exit status 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .claims import format_table, read_ledger
from .executors import EXECUTORS, ExecutorError
from .notebooks import PROFILES, ParameterError, discover, load_chapter, parse_value
from .runner import RunReport, executed_dir, kernel_results_dir, ledger_path, run_chapters

__all__ = ["main", "find_root"]


def find_root(start: Path | None = None) -> Path:
    """The companion's folder: the nearest ancestor with ``_config.yml`` and ``notebooks/``."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_config.yml").exists() and (folder / "notebooks").is_dir():
            return folder
    package_parent = Path(__file__).resolve().parent.parent
    if (package_parent / "notebooks").is_dir():
        return package_parent
    raise ParameterError("cannot find the companion folder (with _config.yml and notebooks/)")


def _folders(default) -> argparse.ArgumentParser:
    """--root and --build-dir; the subcommands' copies default to SUPPRESS, so that a value
    given before the subcommand is kept when none is given after it."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--root", type=Path, default=default,
                   help="companion folder (default: found from here)")
    p.add_argument("--build-dir", type=Path, default=default,
                   help="build folder (default: ROOT/_build)")
    return p


def _parser() -> argparse.ArgumentParser:
    description = __doc__.split("\n\n")[0].replace("``", "")
    p = argparse.ArgumentParser(prog="horizon", description=description,
                                parents=[_folders(None)])
    sub = p.add_subparsers(dest="command", required=True)
    folders = _folders(argparse.SUPPRESS)

    def command(name, help):
        return sub.add_parser(name, help=help, parents=[folders])

    def common(sp, jobs=True):
        sp.add_argument("--profile", choices=PROFILES, default="book",
                        help="parameter profile (default: book)")
        if jobs:
            sp.add_argument("--jobs", type=int, default=None,
                            help="notebooks run in parallel (default: number of cores)")
            sp.add_argument("--executor", choices=EXECUTORS, default="local",
                            help="local process pool (default) or a Dask cluster")
            sp.add_argument("--scheduler", default=None, metavar="ADDRESS",
                            help="Dask scheduler address (default with dask: a LocalCluster)")

    run = command("run", "run chapters and record their claims")
    run.add_argument("notebooks", nargs="+", help="chapter names or paths")
    common(run)
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                     metavar=("NAME", "VALUE"), help="override a parameter (YAML value)")
    common(command("verify", "run every chapter, write the ledger, print it"))
    book = command("book", "run every chapter, then render the site")
    common(book)
    book.add_argument("--no-run", action="store_true",
                      help="render the notebooks already executed in BUILD/executed/PROFILE "
                           "as they are (every chapter must have run once in PROFILE, e.g. "
                           "by an earlier `horizon book`), without running any; --jobs, "
                           "--executor and --scheduler are then unused")
    command("claims", "print the current ledger")
    exp = command("experiment", "train and diagnose the whole cell grid (cached)")
    exp.add_argument("--profile", choices=PROFILES, default="book",
                     help="the experiment's profile (default: book)")
    exp.add_argument("-s", "--set", nargs=2, action="append", default=[], dest="changes",
                     metavar=("NAME", "VALUE"),
                     help="change one setting of the profile (YAML value), e.g. "
                          "--set train.epochs 40 --set hidden 64")
    exp.add_argument("--out", "--results", dest="out", type=Path,
                     help="results folder, shared by all workers (default: BUILD/results)")
    exp.add_argument("--device", default="auto",
                     help="cpu, cuda or auto (default: each worker's own GPU if it has one)")
    exp.add_argument("--executor", choices=EXECUTORS, default="local",
                     help="local (default: one unit after the other) or a Dask cluster")
    exp.add_argument("--scheduler", default=None, metavar="ADDRESS",
                     help="Dask scheduler address (default with dask: a LocalCluster)")
    exp.add_argument("--jobs", type=int, default=None,
                     help="local worker processes, or LocalCluster workers (default: 1 / cores)")
    return p


def _report(report: RunReport) -> int:
    print(format_table(report.rows))
    for run in report.failed_chapters:
        print(f"horizon: notebook {run.name} failed at {run.error} (see {run.output})",
              file=sys.stderr)
    bad = [r for r in report.failed_claims if r["claim"] != "(notebook run)"]
    for row in bad:
        print(f"horizon: claim {row['claim']} of {row['notebook']} failed: measured "
              f"{row['measured']} vs predicted {row['predicted']}", file=sys.stderr)
    verdicts = [r["verdict"] for r in report.rows]
    print(f"{verdicts.count('pass')} passed, {verdicts.count('not reproduced')} not reproduced, "
          f"{len(report.failed_claims)} failed ({len(report.runs)} notebooks)")
    return 0 if report.ok else 1


def _changed_rows(root: Path, rows: list[dict]) -> set[int]:
    """Indices of the ledger rows whose parameters are not their profile's values."""
    chapters, profile_values, changed = discover(root), {}, set()
    for i, row in enumerate(rows):
        key = (row.get("notebook"), row.get("profile"))
        if key[0] not in chapters or "parameters" not in row:
            continue
        if key not in profile_values:
            try:
                profile_values[key] = json.loads(json.dumps(
                    load_chapter(chapters[key[0]]).values(key[1])))
            except ParameterError:      # a profile the chapter no longer has: not comparable
                profile_values[key] = None
        if profile_values[key] is not None and row["parameters"] != profile_values[key]:
            changed.add(i)
    return changed


def _check_executed(root: Path, build: Path, profile: str) -> None:
    """What --no-run renders is complete: every chapter has an executed notebook of this profile
    in the build, and the ledger holds its claims of this profile (a later run of the chapter in
    another profile replaces them; the site's ledger pages would silently lose that chapter)."""
    folder = executed_dir(build, profile)
    chapters = sorted(discover(root))
    missing = [n for n in chapters if not (folder / f"{n}.ipynb").exists()]
    if missing:
        raise ParameterError(
            f"--no-run: {len(missing)} chapter(s) never ran in the {profile} profile into "
            f"{folder} ({', '.join(missing)}): run `horizon book --profile {profile}` once, or "
            f"`horizon run NAME --profile {profile}` for each")
    recorded = {r.get("notebook") for r in read_ledger(ledger_path(build))
                if r.get("profile") == profile}
    unrecorded = [n for n in chapters if n not in recorded]
    if unrecorded:
        raise ParameterError(
            f"--no-run: the ledger holds no {profile}-profile claims of {', '.join(unrecorded)} "
            f"(run since in another profile): `horizon run {' '.join(unrecorded)} "
            f"--profile {profile}` first")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        root = args.root.resolve() if args.root else find_root()
        build = args.build_dir.resolve() if args.build_dir else root / "_build"
        if args.command == "claims":
            rows = read_ledger(ledger_path(build))
            print(format_table(rows, _changed_rows(root, rows)) if rows
                  else "the ledger is empty: run `horizon verify`")
            return 0
        if getattr(args, "jobs", None) is not None and args.jobs < 1:
            raise ParameterError(f"--jobs must be ≥ 1; got {args.jobs}")
        if args.command == "experiment":
            from .experiment_grid import main_experiment

            changes = {name: parse_value(value) for name, value in args.changes}
            from .device import resolve_device

            try:  # an unknown or absent device is a usage error, not a traceback
                resolve_device(args.device)
            except (ValueError, RuntimeError) as err:
                raise ParameterError(f"--device {args.device}: {err}") from None
            return main_experiment(args.profile, args.out or Path(kernel_results_dir(build)),
                                   args.device,
                                   executor=args.executor, scheduler=args.scheduler,
                                   jobs=args.jobs, changes=changes)
        if args.command == "run":
            overrides = {name: parse_value(value) for name, value in args.parameter}
            report = run_chapters(root, args.notebooks, profile=args.profile,
                                  overrides=overrides, build=build, jobs=args.jobs,
                                  executor=args.executor, scheduler=args.scheduler)
            status = _report(report)
            for run in report.runs:
                print(f"executed: {run.output}")
            try:
                _check_executed(root, build, args.profile)
                print(f"to see them as pages: horizon --root {root} --build-dir {build} book "
                      f"--no-run --profile {args.profile}")
            except ParameterError:
                pass    # not every chapter has run in this profile: nothing to render yet
            return status
        if getattr(args, "no_run", False):
            _check_executed(root, build, args.profile)
            status = 0
        else:
            report = run_chapters(root, None, profile=args.profile, build=build, jobs=args.jobs,
                                  replace_ledger=True, executor=args.executor,
                                  scheduler=args.scheduler)
            status = _report(report)
        if args.command == "book":
            from .book import BookBuildError, render_book

            try:
                page = render_book(root, build, args.profile)
            except BookBuildError as err:
                print(f"horizon: {err}", file=sys.stderr)
                return 1
            print(f"The book is ready: open file://{page}")
        return status
    except (ParameterError, ExecutorError) as err:
        print(f"horizon: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
