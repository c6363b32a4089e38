#!/usr/bin/env bash
# llama-bench and llama-server, built from the llama.cpp sources inside the installed
# llama-cpp-python's sdist with the app's own build flags (GGML_NATIVE, and
# cmake/llama-no-amx.cmake as the quick start passes it), so that the baselines in
# bench/llama_bench.py and the llama-server dialect's tests run on the same llama.cpp
# as the app. About 10 minutes on 2 cores; kept in bench/.llama-tools/<version>/ and
# reused. Prints the bin directory. Not part of the default test run.
#
#   bench/build_llama_tools.sh            # then: pytest -m llama_server
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
VERSION=$("$PY" -c 'import llama_cpp; print(llama_cpp.__version__)')
OUT="$PWD/bench/.llama-tools/$VERSION"
if [ -x "$OUT/bin/llama-bench" ] && [ -x "$OUT/bin/llama-server" ]; then
    echo "$OUT/bin"
    exit 0
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$PY" -m pip download --quiet --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$WORK" >&2
tar -xzf "$WORK"/llama_cpp_python-"$VERSION".tar.gz -C "$WORK"
cmake -S "$WORK/llama_cpp_python-$VERSION/vendor/llama.cpp" -B "$WORK/build" \
    -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DBUILD_SHARED_LIBS=OFF \
    -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON \
    -DCMAKE_PROJECT_INCLUDE="$PWD/cmake/llama-no-amx.cmake" >&2
cmake --build "$WORK/build" --target llama-bench llama-server -j "$(nproc)" >&2
mkdir -p "$OUT/bin"
cp "$WORK/build/bin/llama-bench" "$WORK/build/bin/llama-server" "$OUT/bin/"
echo "$OUT/bin"
