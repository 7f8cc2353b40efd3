"""Error lines print the message verbatim: user text is never read as rich markup (issue 21, bug 13)."""

from __future__ import annotations

import polars as pl


def test_error_keeps_bracketed_values(cli, tmp_path):
    f = tmp_path / "log.csv"
    pl.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "y"], "timestamp": [1_600_000_000] * 2,
                  "weight": ["nan", "[oops]"]}).write_csv(f)
    code, _, err = cli(["fit", "--interactions", str(f), "--out", str(tmp_path / "m")])
    assert code == 2 and "[oops]" in err and err.startswith("error:")


def test_error_keeps_paths_that_look_like_markup(cli, tmp_path):
    for name in ("[bold]x.csv", "a[/x]b.csv", "[red]"):
        missing = tmp_path / name
        code, _, err = cli(["fit", "--interactions", str(missing), "--out", str(tmp_path / "m")])
        assert code == 2, err
        assert name in err.replace("\n", "")  # printed whole, and the handler did not crash
