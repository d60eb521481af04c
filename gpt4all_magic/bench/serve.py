"""``python -m gpt4all_magic.bench.serve ARGS``: llama-cpp-python's OpenAI-compatible server
(``python -m llama_cpp.server ARGS``), loading models the way the llama engine does on CPUs whose
llama.cpp build repacks weights for AMX (see :func:`gpt4all_magic.engines.llama.native.without_amx_repack`).
The benchmarks and tests start their local servers through this."""

import runpy

import llama_cpp

from ..engines.llama.native import without_amx_repack

with without_amx_repack(llama_cpp):
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
