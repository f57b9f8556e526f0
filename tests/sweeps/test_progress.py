"""The sweep's progress: without the bar (``--no-progress``) every trial event is still one line, on
stdout as the bar's lines are; with progress off entirely (Python callers) nothing prints."""
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


def test_with_the_bar_the_same_lines_go_to_stdout_above_it(capsys):
    _events(Progress(2, 0, 0, "s", True))
    out, err = capsys.readouterr()
    assert [line.split()[0] for line in out.splitlines()] == ["start", "retry", "start", "done", "FAILED"], out
    assert "sweep s" in err  # the bar


def test_progress_off_prints_nothing(capsys):
    _events(Progress(2, 0, 0, "s", False))
    assert capsys.readouterr() == ("", "")
