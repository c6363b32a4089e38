# Included into llama-cpp-python's build (CMAKE_ARGS="-DCMAKE_PROJECT_INCLUDE=<this file>",
# as the README's quick start passes it) to compile llama.cpp's Intel AMX code out.
#
# Why: with GGML_NATIVE=ON (the default) -march=native turns AMX on wherever the build
# machine has it (Sapphire Rapids and later Xeons), and llama.cpp's AMX buffer type then
# repacks Q4_K weights into kernels that crash or compute garbage (llama.cpp #20824).
# Everything else -march=native finds (AVX-512, VNNI, BF16) and the CPU_REPACK buffer stay.
#
# GCC's driver places the flags -march=native expands to before the command line's own
# -m flags, so these -mno-* win wherever CMake puts them. ggml only tests __AMX_INT8__,
# but all three go, so that no AMX code is generated at all. x86-64 only, and only where
# the compiler knows the flags (a compiler that does not cannot emit AMX either).
include_guard(GLOBAL)

if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$" AND NOT MSVC)
    include(CheckCCompilerFlag)
    set(_qwenchat_no_amx "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16")
    check_c_compiler_flag("${_qwenchat_no_amx}" QWENCHAT_CC_HAS_NO_AMX)
    if(QWENCHAT_CC_HAS_NO_AMX)
        string(APPEND CMAKE_C_FLAGS " ${_qwenchat_no_amx}")
        string(APPEND CMAKE_CXX_FLAGS " ${_qwenchat_no_amx}")
        message(STATUS "qwenchat: Intel AMX compiled out (${_qwenchat_no_amx})")
    endif()
endif()
