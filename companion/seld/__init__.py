"""Sound event localisation and detection (SELDnet, Adavanne et al. 2018), the chapter
"Hearing overlapping sources".

Modules, in the order the chapter uses them: :mod:`~companion.seld.foa` (Ambisonics
encoding and directions), :mod:`~companion.seld.sounds` (synthetic sound classes),
:mod:`~companion.seld.room` (image-source shoebox room), :mod:`~companion.seld.pra_room`
(pyroomacoustics rooms with a measured RT60), :mod:`~companion.seld.decay` (Schroeder
integration, T20/T30), :mod:`~companion.seld.scenes`
(events, overlap, labels), :mod:`~companion.seld.features` (STFT magnitude and phase),
:mod:`~companion.seld.data`, :mod:`~companion.seld.model`, :mod:`~companion.seld.losses`,
:mod:`~companion.seld.train`, :mod:`~companion.seld.metrics`, :mod:`~companion.seld.baseline`
(intensity-vector DOA), :mod:`~companion.seld.music` (MUSIC DOA) and
:mod:`~companion.seld.experiments` (the command line).
"""

from companion.seld.foa import angular_distance, direction_to_unit, foa_encode, unit_to_direction
from companion.seld.metrics import (
    doa_scores,
    doa_scores_dcase2019,
    location_aware_scores,
    paper_doa_error,
    sed_scores,
    seld_score,
)

__all__ = [
    "angular_distance",
    "direction_to_unit",
    "doa_scores",
    "doa_scores_dcase2019",
    "foa_encode",
    "location_aware_scores",
    "paper_doa_error",
    "sed_scores",
    "seld_score",
    "unit_to_direction",
]
