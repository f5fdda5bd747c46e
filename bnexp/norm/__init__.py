"""Batch Normalization and its variants, each written from its paper.

- batch: `BatchNorm`, Ioffe & Szegedy (2015), Algorithms 1 and 2 (section 3.2 for conv layers);
- batch_variants: `BatchRenorm`, Ioffe (2017), batch statistics corrected towards the
  moving ones; `GhostBatchNorm`, Hoffer, Hubara & Soudry (2017), statistics over virtual
  sub-batches. Both keep moving statistics and infer as BatchNorm does;
- per_example: `LayerNorm`, Ba, Kiros & Hinton (2016); `GroupNorm`, Wu & He (2018);
  `InstanceNorm`, Ulyanov, Vedaldi & Lempitsky (2016): per-example statistics, the same
  in training and inference;
- checks: the argument checks and helpers they share.
Every layer takes its statistics over all axes but the last (the channels), so the same
code serves (batch, features) and (batch, height, width, channels).
"""

from bnexp.norm.batch import BatchNorm
from bnexp.norm.batch_variants import BatchRenorm, GhostBatchNorm
from bnexp.norm.checks import check_affine, check_choice, check_number, positions, upcast
from bnexp.norm.per_example import GroupNorm, InstanceNorm, LayerNorm

__all__ = ["BatchNorm", "BatchRenorm", "GhostBatchNorm", "GroupNorm", "InstanceNorm", "LayerNorm",
           "check_affine", "check_choice", "check_number", "positions", "upcast"]
