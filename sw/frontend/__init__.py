"""The frontend: a user's ONNX file → checked graph → (float: quantized) → integer layer program.

* :mod:`.load`: read the file, check its input and ops, tell its form (float, QOperator, QDQ);
* :mod:`.registry`: one handler per ONNX op and form, registered with the conditions it supports
  (``fireforge compile --list-ops`` prints them); :mod:`.float_ops`, :mod:`.qoperator_ops` and
  :mod:`.qdq_ops` hold the handlers, :mod:`.conditions` the checks several of them share;
* :func:`prepare_float_model`: a float graph's handlers check and normalise it for the quantizer;
* :func:`lower`: a quantized graph's handlers read each node into a record; records become layers.
"""

from fireforge.sw.frontend import float_ops, qdq_ops, qoperator_ops  # noqa: F401  (registers the handlers)
from fireforge.sw.frontend.float_ops import prepare_float_model
from fireforge.sw.frontend.load import check_model, graph_form, load_model
from fireforge.sw.frontend.lower import lower
from fireforge.sw.frontend.registry import format_ops, handlers

__all__ = ["load_model", "check_model", "graph_form", "prepare_float_model", "lower", "format_ops", "handlers"]
