"""The command-line tools, one module each (train, eval, predict, export, bench,
sample_data): ``build_parser()``, ``run(...)`` and ``main(argv) -> exit code``. The scripts
in ``tools/`` and the ``segmnv3-*`` commands call these mains."""
