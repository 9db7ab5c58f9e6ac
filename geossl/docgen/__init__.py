"""Documentation generated from the code when the site is built (``mkdocs build``; ``docs/hooks.py`` calls it).

The pages under ``docs/`` hold prose and directives such as ``{{ cli("train") }}``; :func:`~.expand.expand`
replaces each directive with markdown made from the objects that define the behaviour: click's commands (their
flags come from the options models), the pipeline's steps, the strategies' options, ``bench/results.yaml``.
"""
