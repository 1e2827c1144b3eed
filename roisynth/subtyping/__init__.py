"""Disease subtypes and dimensions: :class:`SmileGAN` (Smile-GAN's mapping from healthy to patient volumes),
:class:`SalientSubtypes` (clusters of a contrastive model's salient codes), :class:`SurrealGAN` (Surreal-GAN's
continuous patterns and per-patient severities, the R-indices), all fitted as several fold models whose
consensus and agreement (:func:`consensus`, :func:`dimension_consensus`) are reported."""

from ._agreement import DimensionConsensus, dimension_agreement, dimension_consensus, match_dimensions
from ._consensus import Consensus, alignment, consensus, fold_subsets
from ._dimensions import SalientDimensions, salient_dimensions
from ._salient_subtypes import SalientSubtypes
from ._select_k import KSelection, select_k
from ._smilegan import SmileGAN
from ._surrealgan import SurrealGAN

__all__ = [
    "Consensus",
    "DimensionConsensus",
    "KSelection",
    "SalientDimensions",
    "SalientSubtypes",
    "SmileGAN",
    "SurrealGAN",
    "alignment",
    "consensus",
    "dimension_agreement",
    "dimension_consensus",
    "fold_subsets",
    "match_dimensions",
    "salient_dimensions",
    "select_k",
]
