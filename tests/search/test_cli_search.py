"""`shortlist search …` end to end on the tiny catalogue (the bundled MiniLM; nothing downloaded)."""

from __future__ import annotations

import json

import polars as pl
import pytest

pytest.importorskip("sentence_transformers")
pytest.importorskip("bm25s")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    from search_data import CATALOGUE, _reviews

    root = tmp_path_factory.mktemp("search-cli")
    items, reviews = root / "items.csv", root / "reviews.csv"
    pl.DataFrame(CATALOGUE).write_csv(items)
    _reviews().drop("review_title").write_csv(reviews)
    return {"root": root, "items": items, "reviews": reviews}


@pytest.fixture(scope="module")
def index_dir(files) -> str:
    from typer.testing import CliRunner

    from shortlist.cli import app

    out = files["root"] / "index"
    result = CliRunner().invoke(app, ["search", "index", "--items", str(files["items"]), "--reviews",
                                      str(files["reviews"]), "--holdout", "0.3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return str(out)


def test_index_writes_a_verified_directory(index_dir) -> None:
    from pathlib import Path

    manifest = json.loads((Path(index_dir) / "manifest.json").read_text())
    assert manifest["kind"] == "search_index" and manifest["n_documents"] == 5
    assert manifest["ranker_file"] == "ranker.txt"
    assert manifest["encoder"] == "st:sentence-transformers/all-MiniLM-L6-v2:l2"


def test_query_prints_the_best_item(cli, index_dir) -> None:
    code, out, err = cli(["search", "query", "--index", index_dir, "--query", "helmet for road cycling", "--k", "2"])
    assert code == 0, err
    assert "Road bike helmet" in out.splitlines()[4] or "bike" in out


def test_batch_writes_query_id_item_id_rank_score(cli, index_dir, files) -> None:
    queries = files["root"] / "queries.csv"
    # ids that look like numbers stay text; quoted text with commas and a newline; an empty query
    queries.write_text('query_id,query\n007,"green tea, please"\n8,"a mystery\nnovel"\n9,\n')
    out = files["root"] / "results.csv"
    code, _, err = cli(["search", "batch", "--index", index_dir, "--queries", str(queries), "--k", "3",
                        "--out", str(out)])
    assert code == 0, err
    got = pl.read_csv(out, schema_overrides={"query_id": pl.Utf8})
    assert got.columns == ["query_id", "item_id", "rank", "score"]
    # the empty query is answered from the most reviewed items (the re-ranker's popular candidates)
    assert got.group_by("query_id").len().sort("query_id").rows() == [("007", 3), ("8", 3), ("9", 3)]
    assert got.filter(pl.col("rank") == 1).select("query_id", "item_id").sort("query_id").rows()[:2] == [
        ("007", "tea"), ("8", "novel")]
    assert got.get_column("rank").to_list()[:3] == [1, 2, 3]
    # every mode through the same command; BM25 returns only documents sharing a word
    code, _, err = cli(["search", "batch", "--index", index_dir, "--queries", str(queries), "--k", "3",
                        "--mode", "bm25", "--out", str(out)])
    assert code == 0, err
    assert "9" not in pl.read_csv(out, schema_overrides={"query_id": pl.Utf8}).get_column("query_id").to_list()


def test_batch_refuses_bad_query_files_and_outputs(cli, index_dir, files) -> None:
    dup = files["root"] / "dup.csv"
    dup.write_text("query_id,query\n1,tea\n1,coffee\n")
    code, _, err = cli(["search", "batch", "--index", index_dir, "--queries", str(dup), "--out",
                        str(files["root"] / "r.csv")])
    assert code == 2 and "repeat" in err
    wrong = files["root"] / "wrong.csv"
    wrong.write_text("id,text\n1,tea\n")
    code, _, err = cli(["search", "batch", "--index", index_dir, "--queries", str(wrong), "--out",
                        str(files["root"] / "r.csv")])
    assert code == 2 and "query_id" in err
    mine = files["root"] / "mine.csv"
    mine.write_text("a,b\n1,2\n")
    ok = files["root"] / "ok.csv"
    ok.write_text("query_id,query\n1,tea\n")
    code, _, err = cli(["search", "batch", "--index", index_dir, "--queries", str(ok), "--out", str(mine)])
    assert code == 2 and mine.read_text() == "a,b\n1,2\n"


def test_mode_errors_are_one_line(cli, index_dir) -> None:
    code, _, err = cli(["search", "query", "--index", index_dir, "--query", "tea", "--mode", "magic"])
    assert code == 2 and "unknown search mode" in err


@pytest.mark.slow
def test_evaluate_on_files_with_a_given_encoder(cli, files, tmp_path) -> None:
    code, out, err = cli(["search", "evaluate", "--items", str(files["items"]), "--reviews", str(files["reviews"]),
                          "--encoder", "minilm", "--k", "1,5", "--report", str(tmp_path / "report")])
    assert code == 0, err
    for row in ("bm25", "base encoder", "fine-tuned encoder", "hybrid", "popularity"):
        assert row in out
    # 4 validation reviews are too few to train a re-ranker: the rows are left out, and the report says why
    assert "re-ranked" not in out
    assert "not trained" in (tmp_path / "report" / "report.md").read_text()
    assert (tmp_path / "report" / "report.md").is_file()
    assert "recall@5" in (tmp_path / "report" / "report.md").read_text()


def test_batch_ignores_a_user_column_on_an_index_without_a_recommender(cli, index_dir, files) -> None:
    queries = files["root"] / "with_users.csv"
    queries.write_text("query_id,query,user_id\n1,green tea,u0\n2,helmet,\n")
    out = files["root"] / "users_results.csv"
    code, _, err = cli(["search", "batch", "--index", index_dir, "--queries", str(queries), "--k", "2", "--out",
                        str(out)])
    assert code == 0 and "user_id column is ignored" in err
    assert pl.read_csv(out).filter(pl.col("rank") == 1).get_column("item_id").to_list() == ["tea", "bike"]
    code, _, err = cli(["search", "query", "--index", index_dir, "--query", "tea", "--user-id", "u0"])
    assert code == 2 and "without a recommender" in err


@pytest.mark.slow
def test_personalised_index_through_the_cli(cli, files) -> None:
    from search_data import CATALOGUE, _reviews

    from shortlist.data.containers import build_dataset
    from shortlist.pipeline.two_stage import TwoStageRecommender
    from shortlist.search.data import catalogue_frame, review_frame
    from shortlist.search.split import holdout_split

    history, _ = holdout_split(review_frame(_reviews()), 0.3)
    ds = build_dataset(history.select("user_id", "item_id", "timestamp"),
                       catalogue_frame(pl.DataFrame(CATALOGUE)).filter(pl.col("item_id") != "plain"))
    model_dir = files["root"] / "recommender"
    with pytest.warns(RuntimeWarning, match="too little data"):
        TwoStageRecommender(sources=["popular", "covisit"], n_windows=1).fit(ds.interactions, items=ds.items).save(
            model_dir)
    index = files["root"] / "personal-index"
    code, _, err = cli(["search", "index", "--items", str(files["items"]), "--reviews", str(files["reviews"]),
                        "--holdout", "0.3", "--model", str(model_dir), "--out", str(index)])
    assert code == 0, err
    code, out, err = cli(["search", "query", "--index", str(index), "--query", "green tea", "--user-id", "u0"])
    assert code == 0, err
    assert "tea" in out
    queries = files["root"] / "personal_queries.csv"
    queries.write_text("query_id,query,user_id\n1,green tea,u0\n2,helmet,\n")
    results = files["root"] / "personal_results.csv"
    code, _, err = cli(["search", "batch", "--index", str(index), "--queries", str(queries), "--k", "2",
                        "--out", str(results)])
    assert code == 0, err
    assert pl.read_csv(results).filter(pl.col("rank") == 1).get_column("item_id").to_list() == ["tea", "bike"]
    # a recommender fitted on every review has seen the re-ranker's queries: refused
    full = build_dataset(review_frame(_reviews()).select("user_id", "item_id", "timestamp"), ds.items.frame.drop("item")
                         .with_columns(ds.items.ids.external(ds.items.frame.get_column("item")).alias("item_id")))
    leaky = files["root"] / "leaky"
    with pytest.warns(RuntimeWarning):
        TwoStageRecommender(sources=["popular"], n_windows=1).fit(full.interactions, items=full.items).save(leaky)
    code, _, err = cli(["search", "index", "--items", str(files["items"]), "--reviews", str(files["reviews"]),
                        "--holdout", "0.3", "--model", str(leaky), "--out", str(files["root"] / "leaky-index")])
    assert code == 2 and "seen their answers" in err


def test_evaluate_passes_fine_tuning_settings_and_prints_the_run(cli, files, monkeypatch) -> None:
    import shortlist.search.evaluate as evaluate_module
    from shortlist.search import FinetuneConfig, SearchEvaluation

    seen: dict = {}

    def fake(catalogue, reviews, **kwargs):
        seen.update(kwargs)
        cfg = kwargs["finetune_config"]
        run = {"config": {"batch_size": cfg.batch_size, "max_seq_length": cfg.max_seq_length}, "steps": 3,
               "train_pairs": 96, "train_seconds": 2.0, "pairs_per_second": 48.0, "device": "cpu", "fp16": False,
               "kept_step": 2}
        table = pl.DataFrame({"model": ["bm25"], "recall@1": [0.5], "mrr@1": [0.5]})
        return SearchEvaluation(table=table, meta={"test_queries": 4, "finetune": run})

    monkeypatch.setattr(evaluate_module, "evaluate_search", fake)
    code, out, err = cli(["search", "evaluate", "--items", str(files["items"]), "--reviews", str(files["reviews"]),
                          "--k", "1", "--max-steps", "3", "--batch-size", "8", "--learning-rate", "1e-4",
                          "--hard-negatives", "2", "--keep-last", "--best-metric", "ndcg"])
    assert code == 0, err
    cfg = seen["finetune_config"]
    default = FinetuneConfig()
    assert (cfg.max_steps, cfg.batch_size, cfg.learning_rate, cfg.hard_negatives, cfg.keep_best) == (3, 8, 1e-4, 2,
                                                                                                     False)
    assert cfg.best_metric == "ndcg"
    assert (cfg.max_seq_length, cfg.query_type, cfg.epochs) == (default.max_seq_length, default.query_type,
                                                                default.epochs)  # unset: the config's defaults
    assert "fine-tuning: 3 steps × 8 pairs" in out and "48.0 pairs/s on cpu; kept step 2" in out
