"""Benchmarks anyone can run; each prints ratios against its baseline, measured in one run:

- ``python -m gpt4all_magic.bench`` (:mod:`.core`): ``%%gpt4all`` vs raw llama-cpp-python, threads,
  ``%load_ext`` time, memory;
- ``python -m gpt4all_magic.bench.batch``: batched scoring and generation vs one-at-a-time loops;
- ``python -m gpt4all_magic.bench.remote``: a local server at several concurrency levels.

They sit above everything else and are never imported by the package itself.
"""
