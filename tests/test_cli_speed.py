"""--memory, --compile, --warmup: parsed by the CLI, carried by Settings, used by the engine."""

from __future__ import annotations

import dataclasses
import json

import pytest

from gempix import server
from gempix.engine import models


@pytest.fixture
def prepared(monkeypatch):
    """Records the settings and model of every engine ``prepare``; compiles nothing (the
    compile itself is tested with a counting backend in test_performance)."""
    seen = []
    real = models.prepare

    def recording(loaded, settings):
        seen.append((loaded, settings))
        real(loaded, dataclasses.replace(settings, compile="off"))

    monkeypatch.setattr(models, "prepare", recording)
    return seen


def test_generate_flags_reach_the_engine(cli, tmp_path, settings, prepared):
    code, out, err = cli(
        "generate",
        "a red fox",
        "--model",
        "tiny",
        "--data-dir",
        str(settings.data_dir),
        "--memory",
        "low",
        "--compile",
        "-o",
        str(tmp_path / "out"),
    )
    assert code == 0, err
    ((loaded, used),) = prepared
    assert (used.memory, used.compile) == ("low", "full")
    assert loaded.memory_mode == "low" and loaded.pipe.vae.use_tiling
    assert out.count("seed=") == 1


def test_batch_flags_reach_the_engine(cli, tmp_path, settings, prepared):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(json.dumps({"prompt": "a fox", "seed": 1}) + "\n")
    code, _, err = cli(
        "batch",
        str(prompts),
        "-o",
        str(tmp_path / "out"),
        "--model",
        "tiny",
        "--data-dir",
        str(settings.data_dir),
        "--memory",
        "balanced",
    )
    assert code == 0, err
    ((loaded, used),) = prepared
    assert (used.memory, used.compile, loaded.memory_mode) == ("balanced", "off", "balanced")


@pytest.mark.parametrize(
    ("args", "environ", "expected"),
    [
        (["--memory", "balanced", "--compile", "--warmup"], {}, ("balanced", "full", True)),
        ([], {}, ("auto", "off", False)),
        ([], {"GEMPIX_MEMORY": "low", "GEMPIX_WARMUP": "1"}, ("low", "off", True)),
        (["--memory", "high"], {"GEMPIX_COMPILE": "regional"}, ("high", "regional", False)),
    ],
)
def test_serve_flags_and_their_settings(cli, monkeypatch, args, environ, expected):
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    started = []
    monkeypatch.setattr(server, "serve", lambda settings, **options: started.append(settings))
    code, _, err = cli("serve", *args)
    assert code == 0, err
    ((settings,),) = [started]
    assert (settings.memory, settings.compile, settings.warmup) == expected


def test_bad_memory_mode_is_a_usage_error(cli):
    code, _, err = cli("generate", "a fox", "--memory", "tiny")
    assert code == 2 and "'tiny' is not one of 'auto', 'high', 'balanced', 'low'" in err


def test_serve_warms_up_before_it_listens(capsys, monkeypatch, settings):
    order = []
    monkeypatch.setattr(server, "build_server", lambda studio, **options: order.append("built"))
    monkeypatch.setattr(server.uvicorn, "run", lambda app, **options: order.append("listening"))
    real = models.ModelManager.warm_up

    def warm_up(manager):
        order.append("warm-up")
        return real(manager)

    monkeypatch.setattr(models.ModelManager, "warm_up", warm_up)
    server.serve(dataclasses.replace(settings, warmup=True))
    assert order == ["built", "warm-up", "listening"]
    assert "Warm-up done in" in capsys.readouterr().out

    order.clear()
    server.serve(settings)  # GEMPIX_WARMUP off: no warm-up
    assert order == ["built", "listening"]
