"""The DCGAN example's custom weight initialization (dcgan/main.py): ``weights_init`` applied with
``model.apply``, dispatching on ``m.__class__.__name__`` and writing ``m.weight.data.normal_(0.0,
0.02)`` and ``m.bias.data.fill_(0)``; a small discriminator (Conv2d, BatchNorm2d, LeakyReLU in
place, Sigmoid) trained with BCELoss and Adam(betas=(0.5, 0.999))."""

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim


def weights_init(m):
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        m.weight.data.normal_(0.0, 0.02)
    elif classname.find("BatchNorm") != -1:
        m.weight.data.normal_(1.0, 0.02)
        m.bias.data.fill_(0)


class Discriminator(nn.Module):
    def __init__(self, nc=1, ndf=8):
        super(Discriminator, self).__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, 1, 4, 1, 0, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, input):
        output = self.main(input)
        return output.view(-1, 1).squeeze(1)


def build():
    netD = Discriminator()
    netD.apply(weights_init)
    conv = netD.main[0].weight
    assert abs(conv.std().item() - 0.02) < 0.01 and netD.main[3].bias.abs().sum().item() == 0
    return netD


def train(netD, stochastic=False):
    rng = np.random.default_rng(0)
    real = torch.from_numpy(np.tanh(rng.standard_normal((64, 1, 16, 16)) + 1.0).astype(np.float32))
    fake = torch.from_numpy(np.tanh(rng.standard_normal((64, 1, 16, 16)) - 1.0).astype(np.float32))
    criterion = nn.BCELoss()
    optimizerD = optim.Adam(netD.parameters(), lr=0.0002, betas=(0.5, 0.999))
    real_label, fake_label = 1.0, 0.0
    for i in range(8):
        netD.zero_grad()
        batch = slice(8 * i, 8 * i + 8)
        label = torch.full((8,), real_label, dtype=torch.float)
        output = netD(real[batch])
        errD_real = criterion(output, label)
        errD_real.backward()
        D_x = output.mean().item()
        label.fill_(fake_label)
        output = netD(fake[batch].detach())
        errD_fake = criterion(output, label)
        errD_fake.backward()
        errD = errD_real + errD_fake
        optimizerD.step()
        print("[%d/%d] Loss_D: %.4f D(x): %.4f" % (i, 8, errD.item(), D_x))
    return errD.item()
