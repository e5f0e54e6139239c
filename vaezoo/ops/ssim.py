"""SSIM and multi-scale SSIM per image (Wang, Bovik, Sheikh & Simoncelli 2004; Wang, Simoncelli &
Bovik 2003), differentiable: the reconstruction cost of the MS-SSIM VAE.

Local statistics under a Gaussian window (sigma 1.5) over each channel, zero-padded to keep the size:

    SSIM = mean_pixels [(2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2))]
    CS   = mean_pixels [(2 s_xy + C2) / (s_x^2 + s_y^2 + C2)]
    MS-SSIM = prod_(j < M) ((CS_j + 1) / 2)^(w_j) * ((SSIM_M + 1) / 2)^(w_M)

with C1 = 0.01^2 and C2 = 0.03^2 for images in [0, 1], the scales halved by 2 x 2 average pooling. M
and the weights w follow the smaller side of the image, as pythae's MSSSIM (the five weights of Wang
et al. from 32 pixels up, fewer and renormalized below). Each factor is mapped from [-1, 1] to [0, 1]
before the power (pythae's guard against NaNs for images that anti-correlate), so MS-SSIM is in [0, 1]
and 1 for identical images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["gaussian_window", "ssim", "ms_ssim", "scale_weights"]

C1, C2 = 0.01 ** 2, 0.03 ** 2


def gaussian_window(size: int, sigma: float = 1.5, *, dtype=torch.float32, device=None) -> torch.Tensor:
    """The (size, size) Gaussian window, summing to one."""
    x = torch.arange(size, dtype=dtype, device=device) - size // 2
    g = torch.exp(-x * x / (2 * sigma * sigma))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim(x: torch.Tensor, y: torch.Tensor, window_size: int = 11) -> tuple[torch.Tensor, torch.Tensor]:
    """(SSIM, CS) of each image pair, shape (B,), for images (B, C, H, W) in [0, 1]."""
    channels = x.shape[1]
    window = gaussian_window(window_size, dtype=x.dtype, device=x.device).expand(channels, 1, -1, -1)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, window, padding=window_size // 2, groups=channels)

    mu_x, mu_y = blur(x), blur(y)
    var_x, var_y = blur(x * x) - mu_x * mu_x, blur(y * y) - mu_y * mu_y
    cov = blur(x * y) - mu_x * mu_y
    contrast_structure = (2 * cov + C2) / (var_x + var_y + C2)
    luminance = (2 * mu_x * mu_y + C1) / (mu_x * mu_x + mu_y * mu_y + C1)
    return (luminance * contrast_structure).flatten(1).mean(1), contrast_structure.flatten(1).mean(1)


def scale_weights(side: int) -> list[float]:
    """The scales' exponents for images whose smaller side is ``side`` pixels (pythae's table)."""
    if side < 4:
        return [1.0]
    if side < 8:
        return [0.3222, 0.6778]
    if side < 16:
        return [0.4558, 0.1633, 0.3809]
    if side < 32:
        return [0.3117, 0.3384, 0.2675, 0.0824]
    return [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]


def ms_ssim(x: torch.Tensor, y: torch.Tensor, window_size: int = 11) -> torch.Tensor:
    """MS-SSIM of each image pair, shape (B,), in [0, 1] (see the module docs)."""
    weights = scale_weights(min(x.shape[-2:]))
    log_value = x.new_zeros(x.shape[0])
    for j, weight in enumerate(weights):
        similarity, contrast_structure = ssim(x, y, window_size)
        factor = similarity if j == len(weights) - 1 else contrast_structure
        log_value = log_value + weight * torch.log(((factor + 1) / 2).clamp_min(1e-12))
        if j < len(weights) - 1:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    return torch.exp(log_value)
