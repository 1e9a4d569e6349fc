"""A GAN on a 2-D toy distribution in the DCGAN example's training pattern: real and fake labels
filled into ``torch.full``, the discriminator trained on ``netG(noise).detach()``, the generator
through the discriminator with its own optimizer, and per-group learning rates in the
discriminator's SGD (``[{'params': ...}, {'params': ..., 'lr': ...}]``)."""

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim

nz = 4


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(nn.Linear(nz, 32), nn.LeakyReLU(0.2, inplace=True), nn.Linear(32, 2))

    def forward(self, input):
        return self.main(input)


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(2, 32), nn.LeakyReLU(0.2, inplace=True))
        self.classifier = nn.Sequential(nn.Linear(32, 1), nn.Sigmoid())

    def forward(self, input):
        return self.classifier(self.features(input)).view(-1)


class GAN(nn.Module):
    def __init__(self):
        super().__init__()
        self.netG = Generator()
        self.netD = Discriminator()


def build():
    return GAN()


def train(gan, stochastic=False):
    netG, netD = gan.netG, gan.netD
    rng = np.random.default_rng(14)
    angles = rng.uniform(0, 2 * np.pi, 512)
    real_data = torch.tensor(np.stack([np.cos(angles), np.sin(angles)], 1).astype(np.float32))
    fixed_noise = torch.tensor(rng.standard_normal((512, nz)).astype(np.float32))
    criterion = nn.BCELoss()
    optimizerD = optim.SGD(
        [{"params": netD.features.parameters()}, {"params": netD.classifier.parameters(), "lr": 0.02}],
        lr=0.05,
        momentum=0.5,
    )
    optimizerG = optim.Adam(netG.parameters(), lr=2e-3, betas=(0.5, 0.999))
    real_label, fake_label = 1.0, 0.0
    for i in range(16):
        real_cpu = real_data[32 * i : 32 * (i + 1)]
        b_size = real_cpu.size(0)
        noise = torch.randn(b_size, nz) if stochastic else fixed_noise[32 * i : 32 * (i + 1)]
        netD.zero_grad()
        label = torch.full((b_size,), real_label, dtype=torch.float)
        errD_real = criterion(netD(real_cpu), label)
        errD_real.backward()
        fake = netG(noise)
        label.fill_(fake_label)
        errD_fake = criterion(netD(fake.detach()), label)
        errD_fake.backward()
        errD = errD_real + errD_fake
        optimizerD.step()
        netG.zero_grad()
        label.fill_(real_label)
        errG = criterion(netD(fake), label)
        errG.backward()
        optimizerG.step()
        print("[%d] Loss_D: %.4f Loss_G: %.4f" % (i, errD.item(), errG.item()))
    return errD.item() + errG.item()
