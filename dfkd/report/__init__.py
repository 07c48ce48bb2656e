"""Distillation reports: what a run did and measured, in one file to read or mail.

:func:`write_report` turns the :class:`~dfkd.distill.DistillReport` of a run into a self-contained HTML
page (figures embedded as PNG data URIs) when the path ends in ``.html``, or into a markdown file with
its PNG figures beside it when the path ends in ``.md``. It holds:

* the run: teacher → student, generator, seed, epochs, dfkd version, date;
* teacher vs student: parameters, weight size, latency per graph (measured on the evaluation graphs, or
  on random graphs in the models' input encoding without them) and, when the run had evaluation
  graphs, accuracy, agreement and relative accuracy (R², MAE and RMSE for regression teachers);
* training curves: the loss terms per epoch, the evaluation scores per epoch, and, for online
  generators, the teacher's predicted classes (or output range) on each epoch's generated graphs;
* selected epochs as a table, and the configuration.

The figures need matplotlib (``pip install 'dfkd[plot]'``); without it the report keeps the tables and
says how to get the figures::

    import dfkd
    from dfkd.report import write_report

    result = dfkd.distill_student("teacher.pt", "gin-2-32", out="student.pt", eval_graphs=test_graphs)
    write_report(result.report, "report.html", teacher="teacher.pt", student=result.student,
                 eval_graphs=test_graphs)

The command line does the same with ``dfkd distill ... --report report.html``, and rebuilds the report
of a finished run from its JSON with ``dfkd report student.report.json --out report.html``.

The package splits the work by job:

* :mod:`dfkd.report.collect`: reading a run's ``.report.json`` (:func:`read_report`), finding its
  checkpoints (:func:`find_run_models`), measuring the models (:func:`measure_models`, :class:`ModelFacts`)
  and reading the per-epoch history;
* :mod:`dfkd.report.draw`: the matplotlib figures (:func:`training_figures`);
* :mod:`dfkd.report.render`: the tables and the HTML / markdown output (:func:`write_report`,
  :func:`report_format`).
"""
from dfkd.report.collect import ModelFacts, find_run_models, measure_models, read_report
from dfkd.report.draw import training_figures
from dfkd.report.render import REPORT_FORMATS, report_format, write_report

__all__ = [
    "REPORT_FORMATS",
    "ModelFacts",
    "find_run_models",
    "measure_models",
    "read_report",
    "report_format",
    "training_figures",
    "write_report",
]
