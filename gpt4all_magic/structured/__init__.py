"""Typed answers: JSON Schema to a llama.cpp grammar (:mod:`.gbnf`) and the schemas answers are checked
against (:mod:`.schema`). Pure Python below the engines: the llama engine turns a schema into each
row's grammar, the API and the batch functions validate answers and retry once."""
