"""Small helpers shared by the tests that drive magics through a real InteractiveShell."""

from __future__ import annotations

from IPython.core.error import UsageError


def run(shell, cell):
    """Run a cell the way a notebook does (history, Out, execution count)."""
    return shell.run_cell(cell, store_history=True)


def usage_error(result) -> str:
    """The one-line UsageError message a failed cell showed."""
    assert not result.success
    assert isinstance(result.error_in_exec, UsageError), result.error_in_exec
    message = str(result.error_in_exec)
    assert "\n" not in message
    return message


def raw_llama(**kwargs):
    """A plain ``llama_cpp.Llama`` (an independent reference), loaded the way the llama engine loads models
    on CPUs whose build repacks weights for AMX (:func:`~gpt4all_magic.engines.llama.native.without_amx_repack`)."""
    from gpt4all_magic.engines.llama.native import import_llama_cpp, without_amx_repack

    llama_cpp = import_llama_cpp()
    with without_amx_repack(llama_cpp):
        return llama_cpp.Llama(**kwargs)
