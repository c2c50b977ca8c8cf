"""Results cache: reused only for an identical configuration; a killed write is never trusted."""

import dataclasses

import pytest
import torch

from horizon_lib.cache import ResultCache, canonical_config, config_key


@dataclasses.dataclass(frozen=True)
class Cfg:
    lr: float
    lags: tuple
    name: str = "a"


def test_key_is_canonical_and_sensitive():
    assert (config_key({"a": 1, "b": (1, 2)}, version="1")
            == config_key({"b": [1, 2], "a": 1}, version="1"))
    assert config_key({"a": 1}, version="1") != config_key({"a": 2}, version="1")
    assert config_key({"a": 1}, version="1") != config_key({"a": 1}, version="2")
    assert (canonical_config(Cfg(1e-3, (1, 2)))
            == canonical_config({"lr": 1e-3, "lags": [1, 2], "name": "a"}))
    with pytest.raises(TypeError):
        config_key({"f": object()})


def test_reused_only_for_identical_configuration(tmp_path):
    cache = ResultCache(tmp_path, "train", version="1")
    calls = []

    def compute(v):
        def f():
            calls.append(v)
            return {"w": torch.full((3,), float(v)), "r2": v / 10}
        return f

    r, hit = cache.get_or_compute(Cfg(1e-3, (1, 2)), compute(1))
    assert not hit and calls == [1]
    r2, hit = cache.get_or_compute(Cfg(1e-3, (1, 2)), compute(2))
    assert hit and calls == [1] and torch.equal(r2["w"], r["w"])
    _, hit = cache.get_or_compute(Cfg(2e-3, (1, 2)), compute(3))   # changed configuration
    assert not hit and calls == [1, 3]
    other_version = ResultCache(tmp_path, "train", version="2")     # changed library version
    assert other_version.load(Cfg(1e-3, (1, 2))) is None


def test_killed_write_leaves_nothing_trusted(tmp_path, monkeypatch):
    cache = ResultCache(tmp_path, "train", version="1")
    cfg = Cfg(1e-3, (1,))
    real_save = torch.save

    def dying_save(obj, fh, *a, **k):
        fh.write(b"partial bytes")
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        cache.save(cfg, {"w": torch.ones(2)})
    monkeypatch.setattr(torch, "save", real_save)
    assert not cache.path(cfg).exists()
    assert list(cache.folder.iterdir()) == []        # the temporary file was removed too
    assert cache.load(cfg) is None


def test_truncated_or_foreign_file_is_recomputed(tmp_path):
    cache = ResultCache(tmp_path, "diag", version="1")
    cfg = Cfg(1e-3, (1,))
    path = cache.save(cfg, {"w": torch.ones(100)})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])             # a crash of a non-atomic writer
    assert cache.load(cfg) is None
    # a file at the right name holding another configuration is not trusted either
    torch.save({"version": "1", "config": canonical_config(Cfg(9.0, (1,))), "result": 1}, path)
    assert cache.load(cfg) is None
    result, hit = cache.get_or_compute(cfg, lambda: {"w": torch.zeros(1)})
    assert not hit and cache.load(cfg)["w"].shape == (1,)
    # stray temporary files from a killed run are ignored
    (cache.folder / ".tmp-123.pt").write_bytes(b"junk")
    assert cfg in cache


def test_bad_namespace(tmp_path):
    with pytest.raises(ValueError, match="namespace"):
        ResultCache(tmp_path, "../x")


def test_concurrent_callers_compute_once(tmp_path):
    import threading
    import time

    calls, results = [], []

    def compute():
        calls.append(1)
        time.sleep(0.3)
        return {"w": torch.ones(1)}

    def worker():
        results.append(ResultCache(tmp_path, "grid", version="1").get_or_compute({"a": 1}, compute))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert sorted(hit for _, hit in results) == [False, True, True]


def test_busy_is_true_only_while_another_caller_computes(tmp_path):
    import threading

    cache = ResultCache(tmp_path, "grid", version="1")
    assert not cache.busy({"a": 1})                      # never seen: no lock file
    started, release, seen = threading.Event(), threading.Event(), []

    def compute():
        started.set()
        release.wait(10)
        return {"w": torch.ones(1)}

    t = threading.Thread(target=lambda: cache.get_or_compute({"a": 1}, compute))
    t.start()
    started.wait(10)
    seen.append(cache.busy({"a": 1}))                    # held by the computing caller
    seen.append(cache.busy({"a": 2}))                    # another key is free
    release.set()
    t.join()
    seen.append(cache.busy({"a": 1}))                    # released after saving
    assert seen == [True, False, False]
    assert cache.get_or_compute({"a": 1}, lambda: 1 / 0)[1] is True   # and the result is there


def test_results_are_readable_by_the_group_and_others_the_umask_allows(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        path = ResultCache(tmp_path, "train", version="1").save(Cfg(1e-3, (1,)), {"w": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644           # not mkstemp's 0600
