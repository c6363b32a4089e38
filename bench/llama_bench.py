"""qwenchat's prompt reading and decoding against llama.cpp's own llama-bench, alternating.

The baseline is the real limit: ``llama-bench`` built from the same llama.cpp sources
with the same flags as the app (bench/build_llama_tools.sh), on the same model,
threads and batch size (-b/-ub), flash attention off as the app's default:

  pp  llama-bench -p N -n 0   against the engine reading an N-token prompt in batches
                              (the time to its first token is reported beside it)
  tg  llama-bench -p 0 -n M   against the engine writing M tokens greedily (its decode
                              tokens/s), and with the default sampling beside it

Both sides warm up in their process before timing (llama-bench's default warm-up run;
one short generation in the engine's, see _engine_speed.py).

Each run is a fresh process, interleaved (bench, qwenchat, bench...). Reported: the
medians, and qwenchat/llama-bench for each against the target (>= 0.97).

    .venv/bin/python bench/llama_bench.py [--model test|eval|PATH] [--prompt 512]
        [--decode 128] [--repeats 5] [--n-batch 512] [--llama-bench PATH] [--json]
"""

from __future__ import annotations

import json
import subprocess
import sys

from _common import (
    BENCH_DIR,
    BenchError,
    Report,
    clean_env,
    cpu_threads,
    interleave,
    main_guard,
    median,
    model_path,
    parse,
    parser,
    run,
    run_json,
)


def llama_bench_path(given: str | None) -> str:
    if given:
        return given
    built = subprocess.run(
        ["bash", str(BENCH_DIR / "build_llama_tools.sh")],
        capture_output=True,
        text=True,
        check=False,
    )
    if built.returncode != 0:
        raise BenchError(f"building llama-bench failed: {built.stderr.strip()[-500:]}")
    return built.stdout.strip().splitlines()[-1] + "/llama-bench"


def main() -> None:
    cli = parser(__doc__, repeats=5, warmup=1)
    cli.add_argument("--prompt", type=int, default=512, help="prompt tokens (default 512)")
    cli.add_argument("--decode", type=int, default=128, help="decoded tokens (default 128)")
    cli.add_argument("--n-batch", type=int, default=512, help="n_batch = n_ubatch (default 512)")
    cli.add_argument("--llama-bench", help="the llama-bench binary (default: build it)")
    args = parse(cli)
    path = model_path(args.model)
    threads = args.threads or cpu_threads()
    binary = llama_bench_path(args.llama_bench)
    batch = ["-b", str(args.n_batch), "-ub", str(args.n_batch)]
    common = [binary, "-m", str(path), "-t", str(threads), *batch, "-fa", "0", "-r", "1"]
    engine_cfg = {
        "model": str(path),
        "threads": threads,
        "n_batch": args.n_batch,
        "prompt": args.prompt,
        "decode": args.decode,
    }

    def bench(*which: str) -> float:
        _, out = run([*common, *which, "-o", "json"], env=clean_env())
        [row] = json.loads(out)
        return float(row["avg_ts"])

    def engine() -> dict:
        return run_json(
            [sys.executable, str(BENCH_DIR / "_engine_speed.py"), json.dumps(engine_cfg)],
            env=clean_env(),
        )

    runs = interleave(
        {
            "llama-bench pp": lambda: bench("-p", str(args.prompt), "-n", "0"),
            "qwenchat": engine,
            "llama-bench tg": lambda: bench("-p", "0", "-n", str(args.decode)),
        },
        args.repeats,
        args.warmup,
    )
    bench_pp, bench_tg = median(runs["llama-bench pp"]), median(runs["llama-bench tg"])
    pp = median([r["pp"] for r in runs["qwenchat"]])
    pp_ttft = median([r["pp_ttft"] for r in runs["qwenchat"]])
    tg = median([r["tg"] for r in runs["qwenchat"]])
    tg_sampled = median([r["tg_sampled"] for r in runs["qwenchat"]])
    report = Report(
        "llama_bench",
        {
            "model": path.name,
            "threads": threads,
            "n_batch": args.n_batch,
            "prompt": args.prompt,
            "decode": args.decode,
            "repeats": f"{args.repeats} interleaved after {args.warmup} warm-up",
        },
        results={"runs": runs},
    )
    report.table(
        ["", "llama-bench tok/s", "qwenchat tok/s", "runs (qwenchat)"],
        [
            [f"prompt ({args.prompt})", f"{bench_pp:.1f}", f"{pp:.1f}",
             " ".join(f"{r['pp']:.1f}" for r in runs["qwenchat"])],
            ["prompt to 1st token", "-", f"{pp_ttft:.1f}",
             " ".join(f"{r['pp_ttft']:.1f}" for r in runs["qwenchat"])],
            [f"decode ({args.decode})", f"{bench_tg:.2f}", f"{tg:.2f}",
             " ".join(f"{r['tg']:.2f}" for r in runs["qwenchat"])],
            ["decode, sampled", "-", f"{tg_sampled:.2f}",
             " ".join(f"{r['tg_sampled']:.2f}" for r in runs["qwenchat"])],
        ],
    )  # fmt: skip
    report.ratio("prompt qwenchat/llama-bench", pp / bench_pp, ">= 0.97")
    report.ratio("decode qwenchat/llama-bench", tg / bench_tg, ">= 0.97")
    report.ratio("decode sampled (temperature 0.7)/llama-bench", tg_sampled / bench_tg)
    report.emit(args.json)


if __name__ == "__main__":
    main_guard(main)
