"""The llama.cpp engine (llama-cpp-python, in-process). Layers, lowest first: :mod:`.native` (importing
llama_cpp, its log, deferred Ctrl-C) → :mod:`.batchctx` (multi-sequence contexts) → :mod:`.scoring` and
:mod:`.multiseq` → :mod:`.model` (the backend and its loaded model)."""
