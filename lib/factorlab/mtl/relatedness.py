"""What every task-relatedness measure returns: a matrix over tasks, labelled by target
names, with the seconds it cost (:class:`Relatedness`).

Row ``i``, column ``j`` is the measure for the ordered pair (i, j); symmetric measures
(correlations, gradient cosine) fill both triangles. Directed measures (TAG's lookahead
affinity, encoder swap) read "i's effect on j" (row: the task that acts or lends its encoder,
column: the task measured).

Every measure maps to an *affinity* by one convention, :func:`affinity`: larger means more
related, 0 means no relation (or, for encoder swap, no transfer advantage).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import pandas as pd


@dataclass
class Relatedness:
    """One measure on ``K`` tasks.

    Attributes:
        name: the measure (e.g. ``"pearson_raw"``, ``"tag_affinity"``).
        matrix: ``K x K`` DataFrame, index and columns the target names (rows ``i``, columns
            ``j``); NaN where a pair was not measured.
        seconds: wall-clock seconds the measure cost (see each measure for what is counted).
        info: plain JSON-ready details (sample sizes, steps probed, settings).
    """

    name: str
    matrix: pd.DataFrame
    seconds: float
    info: dict = field(default_factory=dict)

    @property
    def labels(self) -> list[str]:
        return list(self.matrix.index)

    def to_record(self) -> dict:
        """JSON-ready: ``labels``, ``matrix`` (rows of floats, None for NaN), ``seconds``, ``info``."""
        values = [[None if not np.isfinite(v) else float(v) for v in row] for row in self.matrix.to_numpy(float)]
        return {"name": self.name, "labels": self.labels, "matrix": values, "seconds": float(self.seconds),
                "info": dict(self.info)}

    @classmethod
    def from_record(cls, record: dict) -> "Relatedness":
        """Inverse of :meth:`to_record`."""
        m = np.array([[np.nan if v is None else v for v in row] for row in record["matrix"]], dtype=float)
        frame = pd.DataFrame(m, index=record["labels"], columns=record["labels"])
        return cls(record["name"], frame, record["seconds"], dict(record.get("info", {})))


def labelled(values: np.ndarray, labels: list[str]) -> pd.DataFrame:
    """A ``K x K`` array as a DataFrame with ``labels`` on both axes (ValueError on a shape mismatch)."""
    values = np.asarray(values, dtype=float)
    if values.shape != (len(labels), len(labels)):
        raise ValueError(f"a relatedness matrix for {len(labels)} tasks must be {len(labels)}x{len(labels)}, "
                         f"got {values.shape}")
    return pd.DataFrame(values, index=list(labels), columns=list(labels))


#: A matrix as an array or a labelled DataFrame (what :func:`affinity` keeps).
Matrix = TypeVar("Matrix", np.ndarray, pd.DataFrame)

#: The measures whose matrix is an affinity as recorded (larger: more related).
AS_RECORDED = ("gradient_cosine", "tag_affinity")


def encoder_swap_affinity(transfer: Matrix) -> Matrix:
    """The encoder-swap transfer ratio ``T[i, j]`` (task ``j``'s MAE on task ``i``'s frozen
    encoder over ``j``'s own single-task MAE; lower is better) as an affinity, ``1 - T``:
    0 when the lent encoder serves ``j`` exactly as well as its own, positive when better
    (at most 1), negative when worse. The one orientation of encoder swap every chapter uses."""
    return 1.0 - transfer


def affinity(measure: str, matrix: Matrix) -> Matrix:
    """A relatedness ``measure``'s ``K x K`` matrix (array or DataFrame, the same type back) as
    an affinity: larger predicts more help, 0 means unrelated. ``|r|`` for Pearson and Spearman
    (``pearson_*``, ``spearman_*``: a strong anti-correlation carries as much information as a
    correlation), distance correlation (``dcor_*``), gradient cosine and TAG's lookahead affinity
    as recorded, encoder swap by :func:`encoder_swap_affinity`. The diagonal is left as it is.

    Raises:
        ValueError: a measure without a mapping (the message names the valid ones).
    """
    if measure.startswith(("pearson", "spearman")):
        return abs(matrix)
    if measure == "encoder_swap":
        return encoder_swap_affinity(matrix)
    if measure.startswith("dcor") or measure in AS_RECORDED:
        return matrix.copy()
    raise ValueError(f"no affinity mapping for measure {measure!r}: choose pearson_*, spearman_*, dcor_*, "
                     "gradient_cosine, tag_affinity or encoder_swap")
