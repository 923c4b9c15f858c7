"""Random weights in the layout of torch-fidelity's FID Inception (its real file cannot be downloaded here)."""
from __future__ import annotations

from unittest import mock

import torch


def random_fid_inception_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict for ``FeatureExtractorInceptionV3``: default init, with every batch norm's statistics measured
    on random images (data-dependent init). Without that the activations fade layer after layer and the features
    hardly depend on the input, which would let differences in resizing or scaling go unnoticed."""
    from torch import nn
    from torch_fidelity import feature_extractor_inceptionv3 as tf_inception

    torch.manual_seed(seed)
    with mock.patch.object(tf_inception, "load_state_dict_from_url", return_value={}), \
            mock.patch.object(tf_inception.FeatureExtractorInceptionV3, "load_state_dict"):
        net = tf_inception.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # cumulative average over the calibration batch
            module.training = True
    coarse = torch.rand(8, 3, 6, 6, generator=torch.Generator().manual_seed(seed))
    images = (torch.nn.functional.interpolate(coarse, size=(64, 64), mode="bicubic") * 255).clamp(0, 255)
    with torch.no_grad():
        net(images.to(torch.uint8))
    return net.state_dict()
