"""The reconciliation check beside every destination asset: what landed, proved.

`figures` reduces one side to a few numbers per column in one streaming pass, `compare` sets
two sides' figures side by side and finds example keys, `checks` builds the asset checks.
"""

from honey_duck.seam.reconcile.checks import BLOCKING, CHECK_NAME, KEYS, reconcile_checks
from honey_duck.seam.reconcile.compare import EXAMPLES, Comparison, compare, examples
from honey_duck.seam.reconcile.figures import Figures, both_figures, figures, row_hash

__all__ = [
    "BLOCKING",
    "CHECK_NAME",
    "EXAMPLES",
    "KEYS",
    "Comparison",
    "Figures",
    "both_figures",
    "compare",
    "examples",
    "figures",
    "reconcile_checks",
    "row_hash",
]
