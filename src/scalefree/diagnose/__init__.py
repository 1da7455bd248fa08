"""``scalefree diagnose``: how differently would AdamL2 decay the coordinates of a model?

``diagnose(model, loss_fn, batches)`` works on any torch model (:mod:`scalefree.diagnose.core`
has the definitions); ``scalefree diagnose`` runs it on scalefree's models, data and run
directories (:mod:`scalefree.diagnose.cli`).
"""

from scalefree.diagnose.core import analyzed_names, diagnose, summarize
from scalefree.diagnose.result import DiagnoseError, Diagnosis, TensorRow, quantiles

__all__ = [
    "DiagnoseError",
    "Diagnosis",
    "TensorRow",
    "analyzed_names",
    "diagnose",
    "quantiles",
    "summarize",
]
