"""scalefree.reproduce: the paper's experiments as ``scalefree reproduce`` presets.

* :mod:`~scalefree.reproduce.cli` - the ``reproduce`` subcommand and :data:`PRESETS`, the one
  registry of experiments.
* :mod:`~scalefree.reproduce.figures` - fig2 .. fig6: the CIFAR figures as sweeps (the launch path
  of ``scalefree sweep``), then the report.
* :mod:`~scalefree.reproduce.quadratic` - Figure 1 / Corollary 1: GD vs AdamW on quadratics.
* :mod:`~scalefree.reproduce.adagrad_restart` - Appendix B: AdaGrad with restarts.
* :mod:`~scalefree.reproduce.common` - the pieces the dataset-free experiments share.
"""
