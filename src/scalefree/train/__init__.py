"""scalefree.train: one training run, from a RunConfig to its run directory.

Modules (docs/training-loop.md has the picture): ``config`` (RunConfig, run names), ``cli``
(``scalefree train``), ``trainer`` (``train``: setup, resume, config.json), ``loop`` (epochs,
end of epoch, result.json), ``run_state`` (RunState, DistContext), ``evaluation`` (evaluate,
divergence rule), ``callbacks`` (the hooks and PhaseTimes), ``progress``, ``stats``
(UpdateStatistics, load_stats), ``checkpoint``, ``settings`` (process-global torch settings,
restored), ``distributed`` (torchrun).

Nothing is imported here, so importing one part (e.g. ``scalefree.train.stats`` for plotting)
does not load the trainer.
"""
