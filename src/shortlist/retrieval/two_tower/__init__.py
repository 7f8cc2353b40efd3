"""Two-tower candidate source (PyTorch, an optional extra: ``pip install 'shortlist[torch]'``).

Importing this package never needs torch; :meth:`TwoTower.fit` and ad-hoc history retrieval do.
"""

from __future__ import annotations

from shortlist.retrieval.two_tower.source import TwoTower

__all__ = ["TwoTower"]
