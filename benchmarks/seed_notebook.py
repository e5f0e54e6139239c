"""A faithful copy of the seed notebook's model and training loop, the benchmark's baseline.

Kept as the notebook wrote it, including ``torch.rand_like`` in the reparameterization
(a bug vaezoo fixes; it costs the same time as ``randn_like``, so timings are unaffected)
and the deprecated ``size_average=False`` spelled as its modern equivalent ``reduction="sum"``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class VAE(nn.Module):
    nFeatures = 64
    imgWidth = 28
    imgHeight = 28
    dimLatent = 64

    def __init__(self, dimChannels=1, dimFeatures=nFeatures * (imgWidth - 6) * (imgHeight - 6), dimLatent=dimLatent):
        super(VAE, self).__init__()
        self.dimFeatures = dimFeatures
        self.dimLatent = dimLatent
        self.dimChannels = dimChannels
        self.enConv1 = nn.Conv2d(self.dimChannels, 16, 5)
        self.enConv2 = nn.Conv2d(16, self.nFeatures, 3)
        self.enFC1 = nn.Linear(self.dimFeatures, dimLatent)
        self.enFC2 = nn.Linear(self.dimFeatures, dimLatent)
        self.deFC1 = nn.Linear(dimLatent, dimFeatures)
        self.deConv1 = nn.ConvTranspose2d(self.nFeatures, 16, 3)
        self.deConv2 = nn.ConvTranspose2d(16, dimChannels, 5)

    def encode(self, x):
        x = F.relu(self.enConv1(x))
        x = F.relu(self.enConv2(x))
        x = x.view(-1, self.dimFeatures)
        mu = self.enFC1(x)
        logsigma = self.enFC2(x)
        return mu, logsigma

    def sample(self, mu, logsigma):
        std = torch.exp(logsigma / 2)
        eps = torch.rand_like(std)
        return mu + eps * std

    def decode(self, z):
        x = F.relu(self.deFC1(z))
        x = x.view(-1, self.nFeatures, (self.imgWidth - 6), (self.imgHeight - 6))
        x = F.relu(self.deConv1(x))
        x = torch.sigmoid(self.deConv2(x))
        return x

    def forward(self, x_in):
        mu, logsigma = self.encode(x_in)
        z = self.sample(mu, logsigma)
        x_out = self.decode(z)
        return x_out, mu, logsigma


def make_loader(train_images_uint8: torch.Tensor, train_labels: torch.Tensor, batch_size: int = 1024):
    """The notebook's data path: flattened float images / 255 in a TensorDataset, no shuffling."""
    x_train = train_images_uint8.reshape(len(train_images_uint8), -1).double().numpy() / 255
    y_train = train_labels.numpy()
    return torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.Tensor(x_train), torch.Tensor(y_train)), batch_size=batch_size
    )


def train_steps(net, optimizer, loader, device, max_steps: int) -> int:
    """The notebook's inner loop, stopped after ``max_steps`` batches; returns images seen."""
    seen = 0
    for idx, data in enumerate(loader):
        if idx >= max_steps:
            break
        imgs, _ = data
        imgs = imgs.view(-1, 1, 28, 28)
        imgs = imgs.float()
        imgs = imgs.to(device)
        out, mu, logVar = net(imgs)
        kl_divergence = 0.5 * torch.sum(-1 - logVar + mu.pow(2) + logVar.exp())
        loss = F.binary_cross_entropy(out, imgs, reduction="sum") + kl_divergence
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seen += imgs.shape[0]
    if device.type == "cuda":
        torch.cuda.synchronize()
    return seen
