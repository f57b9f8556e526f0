"""The ``ferristor`` command line."""
