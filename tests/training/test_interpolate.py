import pytest
import torch
from tools.interpolate_encoder import interpolate_weights


def test_interpolation_weighs_float_tensors_and_keeps_tuned_integer_buffers():
    base = {"w": torch.tensor([0.0, 2.0]), "ids": torch.tensor([0, 1])}
    tuned = {"w": torch.tensor([4.0, 6.0]), "ids": torch.tensor([5, 6])}
    # 0.75 * [0, 2] + 0.25 * [4, 6] = [1, 3]
    mixed = interpolate_weights(base, tuned, 0.25)
    assert torch.equal(mixed["w"], torch.tensor([1.0, 3.0]))
    assert torch.equal(mixed["ids"], torch.tensor([5, 6]))
    assert torch.equal(interpolate_weights(base, tuned, 0.0)["w"], base["w"])
    assert torch.equal(interpolate_weights(base, tuned, 1.0)["w"], tuned["w"])


def test_interpolation_refuses_different_architectures():
    with pytest.raises(ValueError, match="different parameters"):
        interpolate_weights({"w": torch.zeros(1)}, {"v": torch.zeros(1)}, 0.5)
