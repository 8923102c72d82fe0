"""``--set`` and ``SIEVE_TRAIN_*`` values are read by the type of the field they set, never as
YAML 1.1 (where ``no`` is false and ``0x10`` is 16)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from examples.demo.config import load_demo_config
from trainer_client.config import ConfigError, TrainConfig, apply_overrides, load_config
from trainer_client.overrides import UNKNOWN, NotAccepted, field_type, read_value

BASE = ["model.name_or_path=gpt2"]
YAML_1_1_TRAPS = ["no", "on", "off", "yes", "null", "1e-3", "0x10", "~", "true", "[a]", "010"]
DEMO = Path(__file__).resolve().parents[3] / "configs" / "demo_cpu.yaml"


def _set(*items: str, env: dict[str, str] | None = None) -> TrainConfig:
    return load_config(None, [*BASE, *items], env=env or {})


@pytest.mark.parametrize("text", YAML_1_1_TRAPS)
def test_a_string_field_gets_the_text_as_written(text: str) -> None:
    assert _set(f"run.name={text}").run.name == text
    assert _set(env={"SIEVE_TRAIN_RUN__NAME": text}).run.name == text


def test_mixed_precision_no_is_the_string_no() -> None:
    assert _set("optim.mixed_precision=no").optim.mixed_precision == "no"
    env = {"SIEVE_TRAIN_OPTIM__MIXED_PRECISION": "no"}
    assert _set(env=env).optim.mixed_precision == "no"


@pytest.mark.parametrize("value", ["no", "bf16", "fp16"])
def test_a_literal_field_gets_its_value(value: str) -> None:
    assert _set(f"optim.mixed_precision={value}").optim.mixed_precision == value


def test_a_value_outside_a_literal_names_the_key_and_the_values() -> None:
    with pytest.raises(ConfigError) as caught:
        _set("optim.mixed_precision=fp32")
    message = str(caught.value)
    assert "optim.mixed_precision" in message
    assert "'no', 'bf16', 'fp16'" in message and "'fp32'" in message


@pytest.mark.parametrize(
    ("text", "value"), [("3", 3), ("-7", -7), ("0x10", 16), ("0b11", 3), ("1_000", 1000)]
)
def test_an_int_field(text: str, value: int) -> None:
    assert _set(f"run.seed={text}").run.seed == value


@pytest.mark.parametrize(
    ("text", "value"), [("1e-3", 1e-3), ("0.25", 0.25), ("2", 2.0), ("5E-4", 5e-4)]
)
def test_a_float_field(text: str, value: float) -> None:
    cfg = _set(f"optim.lr={text}", env={"SIEVE_TRAIN_LOSS__CLIP": text})
    assert cfg.optim.lr == value and cfg.loss.clip == value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        *[("true", True), ("yes", True), ("On", True), ("1", True)],
        *[("false", False), ("no", False), ("OFF", False), ("0", False)],
    ],
)
def test_a_bool_field(text: str, value: bool) -> None:
    assert _set(f"data.shuffle={text}").data.shuffle is value


@pytest.mark.parametrize(
    ("item", "key", "accepted"),
    [
        ("run.seed=1.5", "run.seed", "an integer"),
        ("run.seed=ten", "run.seed", "an integer"),
        ("optim.lr=fast", "optim.lr", "a number"),
        ("data.shuffle=maybe", "data.shuffle", "true or false"),
        ("data.limit=some", "data.limit", "an integer or null"),
        ("optim.max_grad_norm=x", "optim.max_grad_norm", "a number or null"),
        ("optim.betas=[0.9]", "optim.betas", "2 items"),
        ("optim.betas=[0.9, x]", "optim.betas", "a number"),
    ],
)
def test_a_value_that_fits_no_type_names_the_key_and_what_fits(
    item: str, key: str, accepted: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        _set(item)
    assert key in str(caught.value) and accepted in str(caught.value)


def test_an_env_var_that_fits_no_type_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"SIEVE_TRAIN_RUN__SEED.*an integer"):
        _set(env={"SIEVE_TRAIN_RUN__SEED": "x"})


def test_optional_fields_take_null_or_their_type() -> None:
    cfg = _set("data.limit=5", "optim.max_grad_norm=null", "run.resume=latest")
    assert cfg.data.limit == 5 and cfg.optim.max_grad_norm is None
    assert cfg.run.resume == "latest"
    cfg = _set("data.limit=null", "optim.max_grad_norm=0.5", "run.resume=null")
    assert cfg.data.limit is None and cfg.optim.max_grad_norm == 0.5 and cfg.run.resume is None
    assert _set("data.system_prompt=no").data.system_prompt == "no"


def test_lists_and_unions_of_lists() -> None:
    cfg = _set("verifier.local_checkers=[math, lean4]", "verifier.url=[http://a, http://b]")
    assert cfg.verifier.local_checkers == ["math", "lean4"]
    assert cfg.verifier.url == ["http://a", "http://b"]
    cfg = _set("verifier.local_checkers=math,no", "verifier.url=http://v:8000")
    assert cfg.verifier.local_checkers == ["math", "no"]  # items of a str list stay text
    assert cfg.verifier.url == "http://v:8000"
    assert _set("verifier.url=null").verifier.url is None


def test_tuples() -> None:
    assert _set("optim.betas=[0, 0.5]").optim.betas == (0.0, 0.5)
    assert _set("optim.betas=0.8,1e-3").optim.betas == (0.8, 1e-3)


def test_nested_models_and_mappings_read_each_value_by_its_field() -> None:
    # A field of any type reads JSON, else text: a transformers config's values.
    cfg = _set(
        "model.architecture={model_type: llama, hidden_size: 64, tie: true, rope: null}",
        "model.architecture.vocab=0x10",
    )
    assert cfg.model.architecture == {
        "model_type": "llama",
        "hidden_size": 64,
        "tie": True,
        "rope": None,
        "vocab": "0x10",
    }


def test_an_unknown_key_is_still_refused_by_name() -> None:
    with pytest.raises(ConfigError, match=re.escape("optim.lrr: unknown key")):
        _set("optim.lrr=no")


class _Inner(BaseModel):
    flag: bool = True
    label: str = ""
    rate: float = 0.0


class _Paths(BaseModel):
    out: Path = Path("runs")
    maybe: Path | None = None
    choice: Literal[1, 2, "x"] = 1
    anything: Any = None
    numbers: list[int] = []
    pair: tuple[str, int] = ("a", 1)
    inner: _Inner = _Inner()


class _Root(BaseModel):
    paths: _Paths = _Paths()


def test_path_fields_and_mixed_literals_through_any_schema() -> None:
    data = apply_overrides(
        {},
        [
            "paths.out=no",
            "paths.maybe=null",
            "paths.choice=2",
            "paths.anything=[1, x]",
            "paths.numbers=[1, 0x2]",
            "paths.pair=[on, 3]",
        ],
        schema=_Root,
    )
    parsed = _Root.model_validate(data).paths
    assert parsed.out == Path("no") and parsed.maybe is None and parsed.choice == 2
    assert parsed.anything == [1, "x"] and parsed.numbers == [1, 2]
    assert parsed.pair == ("on", 3)
    with pytest.raises(ConfigError, match=re.escape("paths.choice must be one of 1, 2, 'x'")):
        apply_overrides({}, ["paths.choice=3"], schema=_Root)


def test_a_nested_model_reads_each_value_by_its_field() -> None:
    data = apply_overrides({}, ["paths.inner={flag: no, label: no, rate: 1e-3}"], schema=_Root)
    assert _Root.model_validate(data).paths.inner == _Inner(flag=False, label="no", rate=1e-3)
    with pytest.raises(ConfigError, match="a mapping of _Inner's fields"):
        apply_overrides({}, ["paths.inner=lr"], schema=_Root)
    with pytest.raises(ConfigError, match=r"paths\.inner must be .*true or false"):
        apply_overrides({}, ["paths.inner={flag: maybe}"], schema=_Root)


def test_field_type_walks_sections_and_mappings() -> None:
    assert field_type(TrainConfig, ["optim", "lr"]) is float
    assert field_type(TrainConfig, ["model", "architecture", "hidden_size"]) is Any
    assert field_type(TrainConfig, ["optim", "nope"]) is UNKNOWN
    assert field_type(TrainConfig, ["optim", "lr", "deeper"]) is UNKNOWN
    with pytest.raises(NotAccepted):
        read_value("x", int)


def test_the_demo_uses_the_same_reading() -> None:
    cfg = load_demo_config(
        DEMO,
        [
            "demo.fit_base=no",
            "model.name_or_path=m",
            "demo.eval_splits=[test]",
            "demo.alphas=0,0.5",
            "optim.lr=1e-3",
        ],
        env={},
    )
    assert cfg.demo.fit_base is False and cfg.demo.eval_splits == ["test"]
    assert cfg.demo.alphas == [0.0, 0.5] and cfg.train.optim.lr == 1e-3
    with pytest.raises(
        ConfigError, match=re.escape("demo.eval_splits")
    ):
        load_demo_config(DEMO, ["demo.eval_splits=[held-out]"], env={})
