"""scalefree's update statistics in other training loops.

* a plain torch loop: ``recorder = Recorder(out_dir, model, optimizer, interval=k)``, then
  ``with recorder.step(): optimizer.step()`` (or ``recorder.before_step()`` /
  ``recorder.after_step()`` around it), ``recorder.end_epoch(epoch)`` at each epoch's end and
  ``recorder.finish(error, "what the error is")`` at the end (the lower-level
  :class:`~scalefree.train.stats.UpdateStatistics` writes only ``stats/``);
* Hugging Face: :class:`scalefree.integrations.huggingface.ScalefreeCallback` (needs
  ``transformers``);
* Lightning: :class:`scalefree.integrations.lightning.ScalefreeCallback` (needs ``lightning``).

The callbacks write a run directory (:class:`~scalefree.integrations.recorder.Recorder`) that
``scalefree plot histogram`` and ``scalefree report`` read. docs/training-loop.md shows all three.
Importing this package imports neither transformers nor lightning.
"""

from scalefree.integrations.recorder import Recorder
from scalefree.train.stats import UpdateStatistics, load_stats

__all__ = ["Recorder", "UpdateStatistics", "load_stats"]
