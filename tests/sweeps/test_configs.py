

def test_every_config_path_refuses_a_wrong_value_with_a_config_error():
    """Any value a spec file or --set can carry, at any path: a named refusal (or a valid config),
    never another exception (a list for the dataset, a huge ECG window, a number for the sizes had
    each crashed)."""
    import warnings

    from ferristor.errors import FerristorError
    from ferristor.sweeps import configs
    crashes = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in configs.config_paths():
            for value in (-1, 0, 1.5, "abc", [], {}, None, True, [1, 2], 1e308, [1, "a"]):
                try:
                    configs.resolve({path: value})
                except FerristorError:
                    pass
                except Exception as e:  # noqa: BLE001 — what the test is for
                    crashes.append(f"{path}={value!r}: {type(e).__name__}: {e}")
    assert crashes == []
