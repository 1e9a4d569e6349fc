"""WGAN-GP's critic update (Gulrajani et al.; the well-known PyTorch implementations): the gradient
penalty computed with ``torch.autograd.grad(outputs=..., inputs=interpolates, grad_outputs=ones,
create_graph=True, retain_graph=True, only_inputs=True)[0]`` on random interpolates between real
and fake samples, ``gradients.norm(2, dim=1)``, and a double backward through the critic."""

import numpy as np
import torch
import torch.nn as nn
from torch import autograd


class Critic(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 1))

    def forward(self, x):
        return self.net(x)


def compute_gradient_penalty(D, real_samples, fake_samples, alpha):
    interpolates = (alpha * real_samples + ((1 - alpha) * fake_samples)).requires_grad_(True)
    d_interpolates = D(interpolates)
    fake = torch.ones(real_samples.shape[0], 1)
    gradients = autograd.grad(
        outputs=d_interpolates,
        inputs=interpolates,
        grad_outputs=fake,
        create_graph=True,
        retain_graph=True,
        only_inputs=True,
    )[0]
    gradients = gradients.view(gradients.size(0), -1)
    return ((gradients.norm(2, dim=1) - 1) ** 2).mean()


def build():
    return Critic()


def train(D, stochastic=False):
    rng = np.random.default_rng(18)
    optimizer_D = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.9))
    lambda_gp = 10
    for i in range(25):
        real = torch.tensor(rng.normal(1.0, 0.3, (32, 2)).astype(np.float32))
        fake = torch.tensor(rng.normal(-1.0, 0.5, (32, 2)).astype(np.float32))
        if stochastic:
            alpha = torch.rand(real.size(0), 1)
        else:
            alpha = torch.tensor(rng.random((32, 1)).astype(np.float32))
        optimizer_D.zero_grad()
        gradient_penalty = compute_gradient_penalty(D, real, fake, alpha)
        d_loss = -torch.mean(D(real)) + torch.mean(D(fake)) + lambda_gp * gradient_penalty
        d_loss.backward()
        optimizer_D.step()
        if i % 5 == 0:
            print(f"[{i}] D loss {d_loss.item():.4f} GP {gradient_penalty.item():.4f}")
    return d_loss.item()
