"""Analysis of run directories: the paper's tables, figures and a one-page report.

* :mod:`scalefree.plots.tables`: final test error per (method, eta0, weight decay), seed means,
  best settings, CSV/Markdown (``write_summary``);
* :mod:`scalefree.plots.figures`: ``heatmap`` (Figures 2-6), ``curves`` (Figure 3 middle),
  ``histogram`` (Figure 3 right, Appendix C), ``correlation`` (Section 4.1);
* :mod:`scalefree.plots.report`: ``write_report(log_folder, out_dir)``, Markdown + HTML;
* :mod:`scalefree.plots.verdict`: whether results rise above chance and noise (the notes on
  figures and reports); :mod:`scalefree.plots.layout`: no offset axes, text that fits, notes;
* :mod:`scalefree.plots.cli`: ``scalefree plot {heatmap,curves,histogram,correlation}`` and
  ``scalefree report``.

Submodules are not imported here, so ``import scalefree.plots`` does not load matplotlib.
"""
