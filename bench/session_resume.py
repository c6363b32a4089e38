"""Time to first token when `ask --session` resumes a long session in a new process.

Set-up (not timed): a session with about --history tokens of notes is written to a
scratch store, then one real `ask --session` turn answers in it, which saves the
KV state of the whole conversation in the cache. That store is the template:
before every timed run it is copied back, so each run resumes the same history.

Contenders, each a fresh `qwenchat ask --json` process, rotated round by round;
the figure is the reply's own `timings.ttft_s` (from the start of the reply to its
first token, model loading excluded):

  resume, KV cache      `ask --session long "<question>"`: loads the saved state,
                        evaluates only the new question;
  resume, no cache      the same with `engine.kv_cache_mb = 0` in the config: the
                        whole history is evaluated, as before this cache existed;
  fresh one-line prompt `ask "<question>"` without a session.

Target (issue 5): resume with the cache <= 1.5x the fresh one-line prompt.

    .venv/bin/python bench/session_resume.py [--model test|eval|PATH] [--history 2000]
        [--repeats 5] [--warmup 1] [--json]
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from _common import (
    QWENCHAT,
    Report,
    clean_env,
    cpu_threads,
    interleave,
    main_guard,
    median,
    model_path,
    parse,
    parser,
    run_json,
)

QUESTION = "Which ship was logged last? Answer in a few words."
TARGET = "<= 1.5"


def build_history(store_path: Path, tokens: int) -> None:
    from qwenchat.store import SessionStore

    with SessionStore(store_path) as store:
        session = store.create_session(name="long")
        for i in range(max(1, tokens // 37)):  # an exchange is about 37 tokens (0.5B model)
            note = f"Note {i}: the harbour master logged ship {i * 7} with crates of tea and silk."
            store.add_message(session.id, {"role": "user", "content": note})
            store.add_message(session.id, {"role": "assistant", "content": f"Logged note {i}."})


def main() -> None:
    cli = parser(__doc__, repeats=5, warmup=1)
    cli.add_argument("--history", type=int, default=2000, help="tokens of history (about)")
    args = parse(cli)
    model = model_path(args.model)
    threads = args.threads or cpu_threads()
    scratch = Path(tempfile.mkdtemp(prefix="qwenchat-resume-"))
    try:
        report = measure(args, model, threads, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report.emit(args.json)


def measure(args, model: Path, threads: int, scratch: Path) -> Report:  # type: ignore[no-untyped-def]
    base = clean_env()
    template, live = scratch / "template", scratch / "data"
    template.mkdir()
    build_history(template / "sessions.db", args.history)
    no_cache_cfg = scratch / "no-cache-config"
    no_cache_cfg.mkdir()
    (no_cache_cfg / "config.toml").write_text("[engine]\nkv_cache_mb = 0\n")
    env = {**base, "QWENCHAT_DATA_DIR": str(template), "QWENCHAT_CACHE_DIR": str(scratch / "c")}
    ask = [QWENCHAT, "ask", "-m", str(model), "--temperature", "0", "--max-tokens", "16"]
    ask += ["--threads", str(threads), "--json"]
    setup = run_json([*ask, "--session", "long", "Note the time."], env=env)
    history_tokens = setup["usage"]["prompt_tokens"] + setup["usage"]["completion_tokens"]

    def resume(config_dir: str) -> dict:  # type: ignore[type-arg]
        shutil.rmtree(live, ignore_errors=True)
        shutil.copytree(template, live)
        run_env = {**env, "QWENCHAT_DATA_DIR": str(live), "QWENCHAT_CONFIG_DIR": config_dir}
        return run_json([*ask, "--session", "long", QUESTION], env=run_env)

    runs = interleave(
        {
            "resume, KV cache": lambda: resume(base["QWENCHAT_CONFIG_DIR"]),
            "resume, no cache": lambda: resume(str(no_cache_cfg)),
            "fresh one-line prompt": lambda: run_json([*ask, QUESTION], env=env),
        },
        args.repeats,
        args.warmup,
    )
    ttft = {name: [r["timings"]["ttft_s"] for r in rs] for name, rs in runs.items()}
    med = {name: median(v) for name, v in ttft.items()}
    report = Report(
        "session_resume",
        {
            "model": model.name,
            "threads": threads,
            "history": f"{history_tokens} tokens",
            "repeats": f"{args.repeats} rotated after {args.warmup} warm-up",
        },
    )
    report.table(
        ["contender", "median ttft s", "min", "max", "prompt tokens", "from cache", "runs (s)"],
        [
            [
                name,
                f"{med[name]:.3f}",
                f"{min(v):.3f}",
                f"{max(v):.3f}",
                runs[name][-1]["usage"]["prompt_tokens"],
                runs[name][-1]["usage"]["cached_tokens"],
                " ".join(f"{x:.2f}" for x in v),
            ]
            for name, v in ttft.items()
        ],
    )
    fresh = med["fresh one-line prompt"]
    report.ratio("resume with cache / fresh prompt", med["resume, KV cache"] / fresh, TARGET)
    report.ratio("resume without cache / fresh prompt", med["resume, no cache"] / fresh)
    report.ratio("resume without / with cache", med["resume, no cache"] / med["resume, KV cache"])
    report.results = {"ttft_s": ttft, "median_s": med, "history_tokens": history_tokens}
    return report


if __name__ == "__main__":
    main_guard(main)
