"""``python -m pipex``: the ``pipex`` command."""

from pipex.cli import main

main(prog_name="pipex")
