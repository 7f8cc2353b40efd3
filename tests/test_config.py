import pytest

from shortlist.config import DEFAULTS, load_config, merge
from shortlist.errors import ConfigError


def test_defaults_returned_as_copy():
    cfg = load_config(None)
    cfg["model"]["kind"] = "x"
    assert DEFAULTS["model"]["kind"] == "two_stage"


def test_toml_overrides(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[model]\nkind = "popular"\n[evaluate]\nk = 20\n')
    cfg = load_config(p)
    assert cfg["model"]["kind"] == "popular" and cfg["model"]["seed"] == 0 and cfg["evaluate"]["k"] == 20


def test_free_form_tables(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[ranker]\nnum_leaves = 63\n[source_params.als]\nfactors = 32\n")
    cfg = load_config(p)
    assert cfg["ranker"] == {"num_leaves": 63} and cfg["source_params"] == {"als": {"factors": 32}}


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[modle]\nkind='x'\n", "unknown key 'modle'"),
        ("[model]\nknd='x'\n", "unknown key 'knd'"),
        ("[model]\nseed='one'\n", "seed must be int"),
        ("[model]\nseed=true\n", "seed must be int"),
        ("[model\n", "invalid TOML"),
    ],
)
def test_bad_config_names_the_key(tmp_path, text, match):
    p = tmp_path / "c.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_config(p)


def test_missing_file():
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("/nonexistent/c.toml")


def test_merge_allows_int_for_float():
    assert merge({"a": 1.5}, {"a": 2}) == {"a": 2}


def test_shipped_configs_parse():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "configs"
    files = sorted(root.glob("*.toml"))
    assert files
    for f in files:
        load_config(f)


def test_the_spelled_out_two_stage_config_is_the_defaults():
    from pathlib import Path

    from shortlist.config import DEFAULTS

    path = Path(__file__).resolve().parents[1] / "configs" / "two_stage.toml"
    cfg = load_config(path)
    assert cfg["model"] == DEFAULTS["model"]
    text = path.read_text()
    missing = [k for k in DEFAULTS["model"] if f"\n{k} =" not in text and f"\n# {k} =" not in text]
    assert not missing, f"configs/two_stage.toml does not spell out {missing}"


def test_model_config_from_a_file_and_flags(tmp_path):
    from shortlist.config import TwoStageConfig, model_config

    p = tmp_path / "c.toml"
    p.write_text('[model]\nmax_candidates = 50\nsources = ["als"]\n[ranker]\nnum_leaves = 7\n')
    cfg = model_config(load_config(p), target="days:7", allow_repeats=None)
    assert cfg == TwoStageConfig(target="days:7", max_candidates=50, sources=("als",), ranker_params={"num_leaves": 7})
    assert model_config(load_config(None)) == TwoStageConfig()
    p.write_text("[model]\nmax_candidates = 0\n")
    with pytest.raises(ConfigError, match="max_candidates must be a positive whole number"):
        model_config(load_config(p))


def test_the_public_api_imports_lazily():
    import subprocess
    import sys

    code = ("import sys, shortlist; assert 'shortlist.pipeline' not in sys.modules; "
            "from shortlist import TwoStageRecommender, TwoStageConfig, load_model, load_dataset, Interactions, Items; "
            "print(TwoStageRecommender.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "TwoStageRecommender"
    import shortlist

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        shortlist.nope  # noqa: B018
