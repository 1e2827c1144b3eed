"""Disease subtypes: :class:`SmileGAN` (Smile-GAN's mapping from healthy to patient volumes) and
:class:`SalientSubtypes` (clusters of a contrastive model's salient codes), both fitted as
several fold models whose consensus and agreement (:func:`consensus`) are reported."""

from ._consensus import Consensus, alignment, consensus, fold_subsets
from ._salient_subtypes import SalientSubtypes
from ._smilegan import SmileGAN

__all__ = ["Consensus", "SalientSubtypes", "SmileGAN", "alignment", "consensus", "fold_subsets"]
