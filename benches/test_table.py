"""Tests of benches/table.py: each row's verdict on its aim, and the table it prints."""

import importlib.util
import pathlib

import pytest

spec = importlib.util.spec_from_file_location("table", pathlib.Path(__file__).with_name("table.py"))
table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(table)


@pytest.mark.parametrize(
    "aim, ours, ratio, unit, verdict",
    [
        ("<1x time", 532.4, 0.43, "ns", "yes"),
        ("<1x time", 900.0, 1.0, "ns", "NO"),
        ("<=0.7x time", 381.1, 0.70, "ns", "yes"),
        ("<=0.7x time", 381.1, 0.701, "ns", "NO"),
        ("1M/1k <=2x", 279.7, 279.7 / 139.3, "ns", "NO"),
        ("1M/1k <=2x", 253.3, 253.3 / 132.9, "ns", "yes"),
        ("<=256 B", 232.2, None, "B", "yes"),
        ("<=256 B", 256.1, None, "B", "NO"),
        # A ratio of its own: `ours` is the figure, to three places (1.79 is not 1.8).
        (">=1.8x", 1.786, None, "x", "NO"),
        (">=1.8x", 1.8, None, "x", "yes"),
        ("(>=1.8x)", 2.13, None, "x", "(yes)"),
        (">=0.8x rate", 51200, 0.79, "ops/s", "NO"),
        (">=3x rate", 2030994, 10.82, "ops/s", "yes"),
        ("(>=0.8x rate)", 51200, 0.79, "ops/s", "(NO)"),
        ("<=1x", 229.6, 0.78, "ns", "yes"),
        ("-", 151376, None, "ops/s", ""),
        ("- (aim is at 1M)", 684.0, None, "B", ""),
        (">=0.8x rate", 51200, None, "ops/s", ""),  # no peer, no ratio: no verdict
    ],
)
def test_each_aim_is_judged_on_the_figure_it_bounds(aim, ours, ratio, unit, verdict):
    assert table.met(aim, ours, ratio, unit) == verdict


def test_the_table_has_a_met_column(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CRITERION_DIR", str(tmp_path / "no-criterion"))
    log = tmp_path / "bench.log"
    log.write_text(
        "noise before\n"
        "BENCH server/post_sessions ours=51200.4 peer=64763.0 unit=ops/s aim=>=0.8x\n"
        "BENCH threads/two_over_one ours=1.786 peer=1.443 unit=x aim=>=1.8\n"
        "BENCH scaling/bytes_per_key_1M ours=232.2 peer=- unit=B aim=<=256\n"
        "BENCH sessions/authorize_create ours=487045.6 peer=- unit=ops/s aim=-\n"
    )
    table.main([str(log)])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| workload | ours | peer | ratio | aim | met |"
    rows = {line.split(" | ")[0].lstrip("| "): line for line in lines[2:]}
    assert rows["scaling/bytes_per_key_1M"].endswith("| <=256 B | yes |")
    assert rows["threads/two_over_one"].endswith("| 1.79x | 1.44x | - | >=1.8x | NO |")
    assert rows["sessions/authorize_create"].endswith("| - |  |")
    assert rows["server/post_sessions"].endswith("| 0.79x | >=0.8x rate | NO |")
