"""VITS's expansion of durations into an alignment, and its bound on a piece's frames."""

from __future__ import annotations

import pytest
import torch

from speechmesh.nn.vits import duration
from speechmesh.nn.vits.duration import expand
from speechmesh.runtime.errors import LimitExceeded


def test_each_frame_belongs_to_the_phoneme_whose_durations_cover_it():
    durations = torch.tensor([[[2.0, 0.0, 3.0]]])
    path, y_mask = expand(durations, torch.ones(1, 1, 3))
    assert y_mask.shape == (1, 1, 5)
    owners = path[0].argmax(dim=1).tolist()
    assert owners == [0, 0, 2, 2, 2]
    assert path[0].sum(dim=1).tolist() == [1.0] * 5


@pytest.mark.parametrize("total", [duration.MAX_PIECE_FRAMES + 1.0, float("inf"), float("nan")])
def test_durations_past_the_bound_are_refused_before_anything_is_made(total):
    durations = torch.tensor([[[1.0, total]]])
    with pytest.raises(LimitExceeded, match="frames per piece") as raised:
        expand(durations, torch.ones(1, 1, 2))
    assert raised.value.code.name == "RESOURCE_EXHAUSTED"


def test_the_bound_itself_is_allowed():
    durations = torch.tensor([[[float(duration.MAX_PIECE_FRAMES)]]])
    _, y_mask = expand(durations, torch.ones(1, 1, 1))
    assert y_mask.shape[-1] == duration.MAX_PIECE_FRAMES
