"""A physics-informed network for u'' = -sin(x) on [0, pi] with u(0) = u(pi) = 0: derivatives from
``torch.autograd.grad(u, x, grad_outputs=torch.ones_like(u), create_graph=True)[0]`` taken twice,
the residual and boundary terms in one loss, Adam then a few L-BFGS steps."""

import math

import torch
import torch.nn as nn


class PINN(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 1))

    def forward(self, x):
        return self.net(x)


def loss_fn(model, x, boundary):
    u = model(x)
    u_x = torch.autograd.grad(u, x, grad_outputs=torch.ones_like(u), create_graph=True)[0]
    u_xx = torch.autograd.grad(u_x, x, grad_outputs=torch.ones_like(u_x), create_graph=True)[0]
    residual = u_xx + torch.sin(x)
    return (residual**2).mean() + (model(boundary) ** 2).mean()


def build():
    return PINN()


def train(model, stochastic=False):
    x = torch.linspace(0, math.pi, 32).unsqueeze(1).requires_grad_(True)
    boundary = torch.tensor([[0.0], [math.pi]])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(60):
        optimizer.zero_grad()
        loss = loss_fn(model, x, boundary)
        loss.backward()
        optimizer.step()
    lbfgs = torch.optim.LBFGS(model.parameters(), lr=0.5, max_iter=10)

    def closure():
        lbfgs.zero_grad()
        value = loss_fn(model, x, boundary)
        value.backward()
        return value

    lbfgs.step(closure)
    return loss_fn(model, x, boundary).item()
