"""pipex's core: pure modules with no scheduler and no Prefect.

Arguments (:mod:`~pipex.core.walk`), tokens, targets and their templates, outcomes, the call a
worker runs, resolution to a plan, the plan's dask graph and the dask collection protocol.
Modules here declare the small protocols they consume (a node, a task) instead of importing
the classes above them.
"""
