import io

import pytest

from dfkd.utils import LOG_REFRESH_SECONDS, progress, scoped_setting


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_refreshes_rarely_in_logs_and_normally_on_a_terminal():
    log, terminal = io.StringIO(), Terminal()
    with progress(range(3), file=log) as bar:
        assert bar.mininterval == LOG_REFRESH_SECONDS
        list(bar)
    with progress(range(3), file=terminal) as bar:
        assert bar.mininterval == 0.1  # tqdm's own default
        list(bar)
    with progress(range(3), file=log, mininterval=1.0) as bar:  # an explicit choice wins
        assert bar.mininterval == 1.0
    silent = io.StringIO()
    assert list(progress(range(3), enabled=False, file=silent)) == [0, 1, 2] and silent.getvalue() == ""


def test_a_logged_bar_writes_a_few_lines_however_often_its_figures_change():
    log = io.StringIO()
    with progress(range(300), file=log) as bar:
        for step in bar:
            bar.set_postfix(loss=f"{1 / (step + 1):.3f}")
    assert log.getvalue().count("\r") <= 4  # opening, closing; tqdm redrew on every set_postfix before


def test_scoped_setting_restores_the_previous_value_even_on_error():
    state = {"value": "a"}
    use = scoped_setting(lambda: state["value"], lambda v: state.update(value=v), "thing")
    with use("b"):
        assert state["value"] == "b"
    with pytest.raises(RuntimeError):
        with use("c"):
            raise RuntimeError
    assert state["value"] == "a" and "thing" in use.__doc__
