"""What a sweep prints while it runs: without the bar (``--no-progress``) every trial event is still one
line, on stdout as the bar's lines are; with progress off entirely (Python callers) nothing prints. A
worker's warnings reach the driver as events and are raised there again, as its own."""
import pickle
import warnings

from ferristor.sweeps.progress import LINES, Progress

RESULTS = {"final_test_accuracy": [0.5, 0.7], "timing": {"train_seconds": 1.25}}


def _events(p: Progress) -> None:
    p.started({"rule.k": 10}, "host:1", 1)
    p.failed_attempt({"rule.k": 10}, "worker pid 1 died (exit code -9)", retry=True, was_running=True)
    p.started({"rule.k": 10}, "host:2", 2)
    p.finished({"rule.k": 10}, RESULTS)
    p.failed_attempt({"rule.k": 100}, "ValueError: boom\ntraceback", retry=False, was_running=False)
    p.close()


def test_without_the_bar_every_event_is_a_line_on_stdout(capsys):
    p = Progress(2, 0, 0, "s", LINES)
    assert p.bar is None
    _events(p)
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == ["start", "retry", "start", "done", "FAILED"], out
    assert "on host:1" in lines[0] and "worker pid 1 died" in lines[1] and "(attempt 2)" in lines[2]
    assert "accuracy 60.00 ± 14.14 % (2 seeds)" in lines[3] and lines[4].endswith("ValueError: boom")
    assert err == ""  # no bar


def test_with_the_bar_the_same_lines_go_to_stdout_above_it(capsys, monkeypatch):
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)  # a terminal
    _events(Progress(2, 0, 0, "s", True))
    out, err = capsys.readouterr()
    assert [line.split()[0] for line in out.splitlines()] == ["start", "retry", "start", "done", "FAILED"], out
    assert "sweep s" in err  # the bar


def test_no_bar_where_stderr_is_no_terminal(capsys):
    """A log file or pipe had filled with the bar's \\r frames; the event lines still print."""
    p = Progress(2, 0, 0, "s", True)
    assert p.bar is None
    _events(p)
    out, err = capsys.readouterr()
    assert [line.split()[0] for line in out.splitlines()] == ["start", "retry", "start", "done", "FAILED"], out
    assert err == ""


def test_progress_off_prints_nothing(capsys):
    _events(Progress(2, 0, 0, "s", False))
    assert capsys.readouterr() == ("", "")


# --- warnings a worker process or Ray task shows: relayed to the driver, shown there as its own ---

class ThirdPartyWarning(UserWarning):
    """A warning class of another package (the driver of a Ray cluster may not have it)."""


def _relayed(*warns):
    import warnings

    from ferristor.sweeps.worker import warnings_to
    events = []
    with warnings_to(lambda kind, payload: events.append((kind, payload))):
        for w in warns:
            warnings.warn(w, stacklevel=1)
    return events


def test_a_workers_warnings_become_events_that_the_driver_raises_again_as_its_own():
    import pickle
    import warnings

    from ferristor.errors import FerristorWarning
    from ferristor.sweeps.executors import warn_again
    events = _relayed(FerristorWarning("has no effect", "transfer.sigma_levels", 0.3), RuntimeWarning("overflow encountered"),
                      ThirdPartyWarning("deprecated"))
    assert [kind for kind, _ in events] == ["warning"] * 3
    payloads = [pickle.loads(pickle.dumps(p)) for _, p in events]  # as a pipe or Ray carries them
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for p in payloads:
            warn_again(p, {})
    ferristor, numeric, other = seen
    assert isinstance(ferristor.message, FerristorWarning)  # its field kept: a command line names it its own way
    assert ferristor.message.render(lambda f: "--sigma" if f == "transfer.sigma_levels" else None) == "--sigma 0.3: has no effect"
    assert numeric.category is RuntimeWarning and str(numeric.message) == "overflow encountered"
    assert other.category is UserWarning and str(other.message) == "ThirdPartyWarning: deprecated"  # as text
    assert other.filename == __file__


def test_a_relayed_warning_is_shown_once_per_place_as_python_would():
    import warnings

    from ferristor.sweeps.executors import warn_again
    events = _relayed(UserWarning("same"))
    registry: dict = {}
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("default")
        for _ in range(3):  # three trials meet it
            warn_again(events[0][1], registry)
    assert len(seen) == 1


class _FiveArguments(UserWarning):
    """A warning that pickles but does not unpickle: its __init__ wants more than its args."""

    def __init__(self, a, b, c, d, why):
        super().__init__(why)


def test_a_warning_that_does_not_unpickle_goes_as_its_text():
    """NoEffectWarning had pickled but, its __init__ taking five arguments, failed to unpickle at the
    driver; the relay tested only that it pickled."""
    from ferristor.sweeps.worker import warnings_to
    sent = []
    with warnings_to(lambda kind, payload: sent.append((kind, payload))):
        warnings.warn(_FiveArguments("a", 1, "b", 2, "why"))
    (kind, (message, category, _, _)), = sent
    assert kind == "warning" and category is UserWarning and "_FiveArguments" in message and "why" in message


def test_a_no_effect_warning_is_relayed_whole():
    """It defines __reduce__, so the driver gets the warning itself and names its settings its own way."""
    from ferristor.sweeps.worker import warnings_to
    from ferristor.transfer_learning.heads import NoEffectWarning
    sent = []
    with warnings_to(lambda kind, payload: sent.append((kind, payload))):
        warnings.warn(NoEffectWarning("a", 1, "b", 2, "why"))
    (kind, (message, category, _, _)), = sent
    assert kind == "warning" and category is NoEffectWarning
    back = pickle.loads(pickle.dumps(message))
    assert (back.field, back.value, back.other, back.other_value, back.message) == ("a", 1, "b", 2, "why")
    assert back.render(lambda f: f"--{f}") == "--a 1 has no effect with --b 2: why"


def test_dry_run_prices_no_failed_trial(monkeypatch, tmp_path):
    """A failed trial stays failed without --retry-failed, so the dry run must not list it as priced
    from its twin's training."""
    import ferristor.sweeps.run as run
    from ferristor.sweeps.trials import Trial
    ident = {"config": {"ledger": {"memristor_energy_pj": 1.0}}, "data": "d", "eval_chunk": None}
    trials = [Trial(key=k, params={"i": k}, config={"seeds": [0], "dataset": "mnist"}, identity=ident) for k in "ab"]
    from types import SimpleNamespace
    p = run.Plan(None, tmp_path, trials, {"mnist": SimpleNamespace(x_train=[0], x_test=[0])}, "x")
    monkeypatch.setattr(run, "data_key", lambda config: "mnist")
    monkeypatch.setattr(run, "trial_cpu_seconds", lambda *a: 10.0)
    monkeypatch.setattr(run.Plan, "status", lambda self: {"a": "failed", "b": "new"})
    monkeypatch.setattr(run.Plan, "trained", lambda self: {run.training_key(ident)})
    states = [line.split()[2] for line in p.dry_run_text().splitlines() if line[:4].strip().isdigit()]
    assert states == ["failed", "priced"]


def test_an_unused_settings_warning_is_relayed_whole():
    """'… transfer.sigma_levels=0.3 has no effect' had named the config path where --sigma was typed;
    a worker relays the warning itself, so the driver names the settings its own way."""
    from ferristor.errors import UnusedSettingsWarning
    from ferristor.sweeps.worker import warnings_to
    sent = []
    with warnings_to(lambda kind, payload: sent.append((kind, payload))):
        warnings.warn(UnusedSettingsWarning("why", [("transfer.sigma_levels", 0.3), ("transfer.level_means", "measured")]))
    (kind, (message, category, _, _)), = sent
    assert kind == "warning" and category is UnusedSettingsWarning
    back = pickle.loads(pickle.dumps(message))
    assert str(back) == "why: transfer.sigma_levels=0.3, transfer.level_means='measured' have no effect"
    assert back.render(lambda f: {"transfer.sigma_levels": "--sigma"}.get(f)) == \
        "why: --sigma 0.3, transfer.level_means='measured' have no effect"
