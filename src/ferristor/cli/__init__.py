"""The ``ferristor`` command line.

:func:`entry` is the console script. It is light on purpose: importing the commands takes about a
second (torch, numba, the configs), and a Ctrl-C in that second must end as one in a command does
(``cli.common``: one line, ``interrupted``, status 130), not as a KeyboardInterrupt traceback from
inside ``import torch``. So this module imports nothing but ``sys``, and :func:`entry`
imports the commands inside its own ``try``.
"""
import sys

INTERRUPTED = "interrupted"  # common.interrupted_line(None): nothing had started, so nothing resumes
STATUS_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a program stopped by Ctrl-C


def _interrupted() -> None:
    # plain writes: click (or anything else) may itself be half-imported when the Ctrl-C came
    try:
        tty = sys.stderr.isatty()
    except (AttributeError, ValueError):
        tty = False
    try:
        sys.stderr.write(("\n" if tty else "") + INTERRUPTED + "\n")  # off the line of the terminal's ^C
        sys.stderr.flush()
    except (OSError, ValueError, KeyboardInterrupt):
        pass
    sys.exit(STATUS_INTERRUPTED)


def entry():
    """The ``ferristor`` console script: the commands of :mod:`ferristor.cli.main`, with a Ctrl-C
    while they load said as one line. Once a command runs, ``FerristorGroup`` reports its Ctrl-C."""
    try:
        from .main import cli
        cli()  # exits itself (FerristorGroup.main), with its own report of a Ctrl-C in a command
    except KeyboardInterrupt:  # while the commands load, or in the instant before cli() takes over
        _interrupted()
