"""``qwenchat models pull/rm/info/default``: names, the download against a stand-in hub
(resume, checksum, split models, errors) and the commands through the entry point."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from qwenchat.errors import DownloadError, ModelError
from qwenchat.models import (
    QWEN25_TEMPLATE_SHA256,
    TEST_MODEL,
    check_model_file,
    describe,
    find_model,
    list_models,
    model_files,
    remove_model,
    stamp_path,
)
from qwenchat.models.hub import (
    HubFile,
    Wanted,
    choose_files,
    find_local,
    parse_name,
    pull,
)
from tests.gguf_builder import GGML_F32, I32, STRING, U16, gguf_bytes, model_kv
from tests.hub_server import StandInHub

QWEN7B = "Qwen/Qwen2.5-7B-Instruct-GGUF"
KIB = 1024
CHUNK = 64 * KIB  # huggingface_hub's download chunk, made small so cuts fall on a chunk


def tiny_model(params: int = 64 * KIB, arch: str = "qwen2") -> bytes:
    """A valid GGUF of about 256 KiB: Qwen2.5-like key/values and one F32 tensor."""
    data = struct.pack(f"<{params}f", *([0.5] * params))
    return gguf_bytes(model_kv(arch), [("w.weight", [params], GGML_F32, data)])


def split_part(no: int, count: int, params: int) -> bytes:
    """Part ``no`` of a split GGUF, as llama.cpp's gguf-split writes it."""
    kv = model_kv() if no == 1 else []
    kv = [*kv, ("split.no", U16, no - 1), ("split.count", U16, count)]
    kv.append(("split.tensors.count", I32, count))
    data = struct.pack(f"<{params}f", *([1.0] * params))
    return gguf_bytes(kv, [(f"t{no}.weight", [params], GGML_F32, data)])


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[StandInHub]:
    """The stand-in hub, with HF_ENDPOINT pointing at it and nothing touching ~/.cache."""
    from huggingface_hub import constants

    with StandInHub() as stand_in:
        monkeypatch.setenv("HF_ENDPOINT", stand_in.url)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
        monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.delenv("HF_TOKEN", raising=False)
        # huggingface_hub read these at import, before the test could set them.
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
        monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "hf-home" / "token"))
        monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", CHUNK)
        # The in-process retry after a dropped connection waits a second: not here.
        monkeypatch.setattr("huggingface_hub.file_download.time.sleep", lambda _s: None)
        yield stand_in


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    return tmp_path / "models"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# --- names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "repo", "stem"),
    [
        ("qwen2.5:0.5b", "Qwen/Qwen2.5-0.5B-Instruct-GGUF", "qwen2.5-0.5b-instruct-q4_k_m"),
        ("qwen2.5:7b", QWEN7B, "qwen2.5-7b-instruct-q4_k_m"),
        ("Qwen2.5:7B-Q8_0", QWEN7B, "qwen2.5-7b-instruct-q8_0"),
        (
            "qwen2.5-coder:1.5b",
            "Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
            "qwen2.5-coder-1.5b-instruct-q4_k_m",
        ),
        (
            "qwen2.5-math:1.5b",
            "bartowski/Qwen2.5-Math-1.5B-Instruct-GGUF",
            "Qwen2.5-Math-1.5B-Instruct-Q4_K_M",
        ),
        (
            "qwen2.5-math:7b-q6_k",
            "bartowski/Qwen2.5-Math-7B-Instruct-GGUF",
            "Qwen2.5-Math-7B-Instruct-Q6_K",
        ),
    ],
)
def test_aliases(name: str, repo: str, stem: str) -> None:
    wanted = parse_name(name)
    assert (wanted.repo_id, wanted.stem, wanted.filename) == (repo, stem, None)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("llama3:8b", "unknown model name 'llama3:8b'; use an alias (qwen2.5:0.5b"),
        ("qwen2.5:9b", "'qwen2.5:9b' has size '9b'; qwen2.5 comes as qwen2.5:0.5b, "),
        ("qwen2.5", "'qwen2.5' has no size; qwen2.5 comes as"),
        ("qwen2.5-math:0.5b", "qwen2.5-math comes as qwen2.5-math:1.5b, qwen2.5-math:7b"),
        ("qwen2.5:7b-q4 k", "'q4 k' is not a quantisation name"),
        ("not a repo/x y", "is not OWNER/REPO:FILE.gguf"),
    ],
)
def test_bad_names_are_one_line_errors(name: str, message: str) -> None:
    with pytest.raises(ModelError) as info:
        parse_name(name)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_repo_forms() -> None:
    assert parse_name("bartowski/X-GGUF:X-Q5_K_M.gguf") == Wanted(
        name="bartowski/X-GGUF:X-Q5_K_M.gguf", repo_id="bartowski/X-GGUF", filename="X-Q5_K_M.gguf"
    )
    assert parse_name("someone/Y-GGUF:Q8_0").quant == "Q8_0"
    assert parse_name("someone/Y-GGUF").quant == "q4_k_m"


def listing(*paths: str) -> list[HubFile]:
    return [HubFile(path, 10, "ab" * 32) for path in paths]


def test_choose_files_matches_names_in_any_case() -> None:
    files = listing(
        "Qwen2.5-Math-1.5B-Instruct-Q4_K_M.gguf",
        "Qwen2.5-Math-1.5B-Instruct-Q8_0.gguf",
        "README.md",
    )
    chosen = choose_files(parse_name("qwen2.5-math:1.5b"), files)
    assert [f.path for f in chosen] == ["Qwen2.5-Math-1.5B-Instruct-Q4_K_M.gguf"]
    by_quant = choose_files(parse_name("bartowski/Qwen2.5-Math-1.5B-Instruct-GGUF:q8_0"), files)
    assert [f.path for f in by_quant] == ["Qwen2.5-Math-1.5B-Instruct-Q8_0.gguf"]


def test_choose_files_takes_every_part_of_a_split_model_in_order() -> None:
    files = listing(
        "qwen2.5-7b-instruct-q4_k_m-00002-of-00002.gguf",
        "qwen2.5-7b-instruct-q4_k_m-00001-of-00002.gguf",
        "qwen2.5-7b-instruct-q8_0-00001-of-00003.gguf",
    )
    chosen = choose_files(parse_name("qwen2.5:7b"), files)
    assert [f.path for f in chosen] == [files[1].path, files[0].path]
    # Naming any part of it by file takes them all.
    by_file = choose_files(parse_name(f"{QWEN7B}:{files[0].path}"), files)
    assert by_file == chosen


def test_choose_files_refuses_a_split_model_with_missing_parts() -> None:
    files = listing("qwen2.5-7b-instruct-q8_0-00001-of-00003.gguf")
    with pytest.raises(
        ModelError, match=r"lists only 1 of the 3 parts of qwen2.5-7b-instruct-q8_0"
    ):
        choose_files(parse_name("qwen2.5:7b-q8_0"), files)


def test_choose_files_says_what_the_repo_has() -> None:
    files = listing("qwen2.5-7b-instruct-q8_0.gguf", "qwen2.5-7b-instruct-fp16-00001-of-00001.gguf")
    with pytest.raises(ModelError) as info:
        choose_files(parse_name("qwen2.5:7b-q2_k"), files)
    assert str(info.value) == (
        f"no qwen2.5-7b-instruct-q2_k.gguf in {QWEN7B}; "
        "it has: qwen2.5-7b-instruct-fp16, qwen2.5-7b-instruct-q8_0"
    )


def test_choose_files_quant_matching_several_models_is_ambiguous() -> None:
    files = listing("a-Q4_K_M.gguf", "b.Q4_K_M.gguf")
    with pytest.raises(ModelError, match=r"matches several models .*a-q4_k_m, b.q4_k_m"):
        choose_files(parse_name("x/y"), files)


def test_the_official_template_is_recognised(tmp_path: Path) -> None:
    official = (
        Path(__file__).parents[1] / "data" / "qwen2.5-instruct-chat-template.jinja"
    ).read_text(encoding="utf-8")
    assert sha256(official.encode()) == QWEN25_TEMPLATE_SHA256
    kv = [kv for kv in model_kv() if kv[0] != "tokenizer.chat_template"]
    for template, official_one in ((official, True), (official + " ", False)):
        path = tmp_path / "m.gguf"
        path.write_bytes(gguf_bytes([*kv, ("tokenizer.chat_template", STRING, template)]))
        info = describe(path)
        assert (info.is_qwen_template, info.is_official_template) == (True, official_one)


# --- pulling from the stand-in hub ---------------------------------------------------------


def test_pull_downloads_checks_and_stamps(hub: StandInHub, models_dir: Path) -> None:
    data = tiny_model()
    hub.add(QWEN7B, "qwen2.5-7b-instruct-q4_k_m.gguf", data)
    hub.add(QWEN7B, "qwen2.5-7b-instruct-q8_0.gguf", b"not this one")
    seen: list[tuple[str, int, int]] = []
    pulled = pull("qwen2.5:7b", models_dir, lambda *args: seen.append(args))
    target = models_dir / "qwen2.5-7b-instruct-q4_k_m.gguf"
    assert pulled.path == target and pulled.downloaded and pulled.size == len(data)
    assert target.read_bytes() == data
    assert names(models_dir) == [target.name, target.name + ".verified"]
    assert seen[-1] == (target.name, len(data), len(data))
    assert [m.name for m in list_models(models_dir)] == ["qwen2.5-7b-instruct-q4_k_m"]
    # The download was pinned to the commit the listing saw.
    commit = hub.repos[QWEN7B].commit
    assert any(f"/resolve/{commit}/qwen2.5-7b-instruct-q4_k_m.gguf" in r.path for r in hub.requests)


def test_pull_again_downloads_nothing(hub: StandInHub, models_dir: Path) -> None:
    file = hub.add(QWEN7B, "qwen2.5-7b-instruct-q4_k_m.gguf", tiny_model())
    pull("qwen2.5:7b", models_dir)
    again = pull("qwen2.5:7b", models_dir)
    assert not again.downloaded and len(hub.downloads(file)) == 1


def test_pull_replaces_another_version_of_the_file(hub: StandInHub, models_dir: Path) -> None:
    data = tiny_model()
    hub.add(QWEN7B, "qwen2.5-7b-instruct-q4_k_m.gguf", data)
    models_dir.mkdir()
    (models_dir / "qwen2.5-7b-instruct-q4_k_m.gguf").write_bytes(b"an older upload")
    (models_dir / "qwen2.5-7b-instruct-q4_k_m.gguf.0123456789ab.partial").write_bytes(b"old")
    assert pull("qwen2.5:7b", models_dir).downloaded
    assert (models_dir / "qwen2.5-7b-instruct-q4_k_m.gguf").read_bytes() == data
    assert not list(models_dir.glob("*.partial"))


def test_hf_endpoint_is_read_at_each_pull(hub: StandInHub, models_dir: Path) -> None:
    from huggingface_hub import constants

    assert hub.url != constants.ENDPOINT  # imported before the test set HF_ENDPOINT
    hub.add(QWEN7B, "qwen2.5-7b-instruct-q4_k_m.gguf", tiny_model())
    assert pull("qwen2.5:7b", models_dir).downloaded


def test_repo_and_file_form(hub: StandInHub, models_dir: Path) -> None:
    data = tiny_model()
    hub.add("someone/Odd-GGUF", "sub/dir/Odd.Q5_K_M.gguf", data)
    pulled = pull("someone/Odd-GGUF:sub/dir/Odd.Q5_K_M.gguf", models_dir)
    assert pulled.path == models_dir / "Odd.Q5_K_M.gguf" and pulled.path.read_bytes() == data
    assert pull("someone/Odd-GGUF:Q5_K_M", models_dir).path == pulled.path


def test_a_dropped_connection_resumes_within_the_pull(hub: StandInHub, models_dir: Path) -> None:
    data = tiny_model()
    file = hub.add(QWEN7B, "qwen2.5-7b-instruct-q4_k_m.gguf", data)
    hub.cut_after["qwen2.5-7b-instruct-q4_k_m.gguf"] = 2 * CHUNK
    pulled = pull("qwen2.5:7b", models_dir)
    assert pulled.path.read_bytes() == data
    first, second = hub.downloads(file)
    assert (first.range, first.sent) == (None, 2 * CHUNK)
    assert second.range == f"bytes={2 * CHUNK}-"
    assert first.sent + second.sent == len(data)  # nothing fetched twice


def test_an_interrupted_pull_resumes_at_the_next(hub: StandInHub, models_dir: Path) -> None:
    data = tiny_model()
    file = hub.add(QWEN7B, "qwen2.5-7b-instruct-q4_k_m.gguf", data)

    def stop(_name: str, done: int, _total: int) -> None:
        if done >= 2 * CHUNK:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pull("qwen2.5:7b", models_dir, stop)
    (partial,) = models_dir.glob("*.partial")
    assert partial.name == f"qwen2.5-7b-instruct-q4_k_m.gguf.{file.sha256[:12]}.partial"
    assert partial.stat().st_size == 2 * CHUNK
    assert model_files(models_dir) == [] and list_models(models_dir) == []
    with pytest.raises(ModelError, match="not in"):
        find_local("qwen2.5:7b", models_dir)

    pulled = pull("qwen2.5:7b", models_dir)
    assert pulled.path.read_bytes() == data
    resumed = hub.downloads(file)[-1]
    assert resumed.range == f"bytes={2 * CHUNK}-" and resumed.sent == len(data) - 2 * CHUNK
    assert not partial.exists()


def test_a_server_that_ignores_range_still_gives_a_good_file(
    hub: StandInHub, models_dir: Path
) -> None:
    data = tiny_model()
    file = hub.add(QWEN7B, "qwen2.5-7b-instruct-q4_k_m.gguf", data)
    models_dir.mkdir()
    partial = models_dir / f"qwen2.5-7b-instruct-q4_k_m.gguf.{file.sha256[:12]}.partial"
    partial.write_bytes(data[: 3 * CHUNK])
    hub.ignore_range = True
    assert pull("qwen2.5:7b", models_dir).path.read_bytes() == data
    assert hub.downloads(file)[-1].sent == len(data)


def test_a_checksum_mismatch_is_rejected_and_deleted(hub: StandInHub, models_dir: Path) -> None:
    hub.add(QWEN7B, "qwen2.5-7b-instruct-q4_k_m.gguf", tiny_model(), sha256="ab" * 32)
    with pytest.raises(DownloadError) as info:
        pull("qwen2.5:7b", models_dir)
    message = str(info.value)
    assert message.startswith(f"qwen2.5-7b-instruct-q4_k_m.gguf from {QWEN7B} failed its checksum")
    assert f"the hub says {'ab' * 32}); the download was deleted" in message
    assert "\n" not in message and names(models_dir) == []


def test_a_split_model_is_pulled_whole(hub: StandInHub, models_dir: Path) -> None:
    parts = [split_part(1, 2, 1000), split_part(2, 2, 3000)]
    for no, data in enumerate(parts, 1):
        hub.add(QWEN7B, f"qwen2.5-7b-instruct-q4_k_m-{no:05d}-of-00002.gguf", data)
    pulled = pull("qwen2.5:7b", models_dir)
    first, second = (
        models_dir / f"qwen2.5-7b-instruct-q4_k_m-0000{n}-of-00002.gguf" for n in (1, 2)
    )
    assert pulled.files == (first, second) and pulled.name == "qwen2.5-7b-instruct-q4_k_m"
    assert [first.read_bytes(), second.read_bytes()] == parts
    assert stamp_path(first).exists() and stamp_path(second).exists()
    # The first part stands for the model; the second is hidden.
    assert model_files(models_dir) == [first]
    info = describe(first)
    assert (info.name, info.parts, info.size_bytes) == (pulled.name, 2, sum(map(len, parts)))
    assert info.parameter_count == 4000
    assert find_model("qwen2.5-7b-instruct-q4_k_m", models_dir) == first
    assert find_local("qwen2.5:7b", models_dir) == first
    # A model missing a part is never loaded, nor is a later part on its own.
    second.rename(second.with_suffix(".moved"))
    with pytest.raises(
        ModelError, match=r"split into 2 files but .*00002-of-00002.gguf is missing"
    ):
        check_model_file(first)
    second.with_suffix(".moved").rename(second)
    with pytest.raises(ModelError, match="is part 2 of a split model; load its first part"):
        check_model_file(second)
    remove_model(first, models_dir)
    assert names(models_dir) == []


def test_two_pulls_never_write_one_file(hub: StandInHub, models_dir: Path) -> None:
    file = hub.add(QWEN7B, "qwen2.5-7b-instruct-q4_k_m.gguf", tiny_model())
    models_dir.mkdir()
    partial = models_dir / f"qwen2.5-7b-instruct-q4_k_m.gguf.{file.sha256[:12]}.partial"
    with open(partial, "wb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        with pytest.raises(DownloadError, match="another qwenchat is downloading"):
            pull("qwen2.5:7b", models_dir)


# --- errors ----------------------------------------------------------------------------


def test_unknown_repo(hub: StandInHub, models_dir: Path) -> None:
    with pytest.raises(ModelError) as info:
        pull("qwen2.5:7b", models_dir)
    assert (
        str(info.value) == f"no repository {QWEN7B} on {hub.url} (or it is private); check the name"
    )


def test_file_not_in_repo(hub: StandInHub, models_dir: Path) -> None:
    hub.add(QWEN7B, "qwen2.5-7b-instruct-q8_0.gguf", b"x")
    with pytest.raises(ModelError, match=r"no qwen2.5-7b-instruct-q4_k_m.gguf in .*it has: qwen2"):
        pull("qwen2.5:7b", models_dir)


def test_hub_unreachable(
    monkeypatch: pytest.MonkeyPatch, hub: StandInHub, models_dir: Path
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(DownloadError) as info:
        pull("qwen2.5:7b", models_dir)
    assert str(info.value).startswith(f"cannot download from http://127.0.0.1:{port} (")
    assert "check the network or HF_ENDPOINT" in str(info.value)


def test_not_enough_disk_space(
    monkeypatch: pytest.MonkeyPatch, hub: StandInHub, models_dir: Path
) -> None:
    hub.add(QWEN7B, "qwen2.5-7b-instruct-q4_k_m.gguf", tiny_model())

    class Usage:
        free = 1000

    monkeypatch.setattr("qwenchat.models.files.shutil.disk_usage", lambda _path: Usage)
    with pytest.raises(ModelError, match=r"not enough disk space in .* for qwen2.5-7b-instruct"):
        pull("qwen2.5:7b", models_dir)
    assert names(models_dir) == []


def test_rm_refuses_files_outside_the_models_dir(tmp_path: Path, models_dir: Path) -> None:
    elsewhere = tmp_path / "mine.gguf"
    elsewhere.write_bytes(tiny_model())
    models_dir.mkdir()
    with pytest.raises(ModelError, match="is not in the models dir"):
        remove_model(elsewhere, models_dir)
    assert elsewhere.exists()


# --- the commands, through the entry point --------------------------------------------------


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from qwenchat.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.fixture
def cli_env(hub: StandInHub, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "QWENCHAT_"))}
    env.update(
        QWENCHAT_CONFIG_DIR=str(tmp_path / "cfg"),
        QWENCHAT_DATA_DIR=str(tmp_path / "data"),
        QWENCHAT_CACHE_DIR=str(tmp_path / "cache"),
        HF_ENDPOINT=hub.url,
        HF_HOME=str(tmp_path / "hf-home"),
        HF_HUB_DISABLE_TELEMETRY="1",
    )
    return env


def test_cli_pull_info_default_rm(hub: StandInHub, cli_env: dict[str, str], tmp_path: Path) -> None:
    data = tiny_model()
    hub.add("Qwen/Qwen2.5-0.5B-Instruct-GGUF", "qwen2.5-0.5b-instruct-q4_k_m.gguf", data)
    models = tmp_path / "data" / "models"
    name = "qwen2.5-0.5b-instruct-q4_k_m"

    pulled = run_cli(cli_env, "models", "pull", "qwen2.5:0.5b")
    assert (pulled.returncode, pulled.stderr) == (0, "")
    assert pulled.stdout == f"pulled {name} (0 MiB) into {models}; sha256 checked\n"

    shown = run_cli(cli_env, "models", "info", "qwen2.5:0.5b")
    assert shown.returncode == 0, shown.stderr
    rows = {line[:15].rstrip(): line[16:] for line in shown.stdout.splitlines()}
    assert rows["name"] == name and rows["architecture"] == "qwen2"
    assert rows["parameters"] == "0.5B (65,536 weights in the GGUF)"
    assert (rows["context length"], rows["quantisation"]) == ("32,768", "Q4_K_M")
    assert rows["chat template"] == (
        "present, Qwen2.5-style (ChatML with tool calls) but not the official one"
    )

    as_json = run_cli(cli_env, "models", "info", "--json", name)
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["parameter_count"] == 65536

    config = tmp_path / "cfg" / "config.toml"
    config.parent.mkdir()
    config.write_text("# my settings\n\n[sampling]\ntemperature = 0.2  # cool\n", encoding="utf-8")
    chosen = run_cli(cli_env, "models", "default", "qwen2.5:0.5b")
    assert chosen.returncode == 0, chosen.stderr
    assert chosen.stdout == f"default model: {name} (written to {config})\n"
    assert config.read_text(encoding="utf-8") == (
        f'# my settings\nmodel = "{name}"\n\n[sampling]\ntemperature = 0.2  # cool\n'
    )

    removed = run_cli(cli_env, "models", "rm", name[:12])
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout == f"removed {name} from {models}\n"
    assert removed.stderr.startswith("qwenchat: warning: it was the default model")
    assert names(models) == []


def test_cli_errors_are_one_line_with_exit_codes(
    hub: StandInHub, cli_env: dict[str, str], tmp_path: Path
) -> None:
    hub.add(QWEN7B, "qwen2.5-7b-instruct-q4_k_m.gguf", tiny_model(), sha256="ab" * 32)
    elsewhere = tmp_path / "elsewhere.gguf"
    elsewhere.write_bytes(tiny_model())
    cases = [
        (("pull", "llama3:8b"), 2, "qwenchat: unknown model name 'llama3:8b'; use an alias"),
        (("pull", "qwen2.5:7b"), 1, "qwenchat: qwen2.5-7b-instruct-q4_k_m.gguf from "),
        (("pull", "qwen2.5:3b"), 2, "qwenchat: no repository Qwen/Qwen2.5-3B-Instruct-GGUF on"),
        (("info", "qwen2.5:7b"), 2, "qwenchat: model 'qwen2.5:7b' is not in "),
        (("rm", str(elsewhere)), 2, f"qwenchat: {elsewhere} is not in the models dir"),
        (("default", "nothing-here"), 2, "qwenchat: model 'nothing-here' not found"),
    ]
    for args, code, start in cases:
        result = run_cli(cli_env, "models", *args)
        assert result.returncode == code, (args, result.stderr)
        assert result.stderr.startswith(start) and result.stderr.count("\n") == 1, result.stderr
        assert result.stdout == ""
    assert names(tmp_path / "data" / "models") == []
    assert elsewhere.exists()


# --- the real test model, through the stand-in --------------------------------------------------


@pytest.mark.model
def test_pull_the_real_test_model(
    monkeypatch: pytest.MonkeyPatch, hub: StandInHub, test_model_path: Path, models_dir: Path
) -> None:
    from huggingface_hub import constants

    hub.add(
        "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
        TEST_MODEL.filename,
        test_model_path,
        sha256=TEST_MODEL.sha256,
    )
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 10 << 20)  # the real one: 491 MB here
    pulled = pull("qwen2.5-coder:0.5b", models_dir)
    assert pulled.path == models_dir / TEST_MODEL.filename
    digest = hashlib.sha256()
    with open(pulled.path, "rb") as handle:
        while chunk := handle.read(8 << 20):
            digest.update(chunk)
    assert digest.hexdigest() == TEST_MODEL.sha256
    assert digest.hexdigest() == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    info = describe(pulled.path)
    assert info.is_official_template and info.parameters == "0.5B"
    assert info.parameter_count == 630_167_424  # 494M, with the tied embedding stored twice
