"""A mixture of experts: experts in an ``nn.ModuleList`` and named heads in an ``nn.ModuleDict``,
softmax gates with ``torch.topk``-selected experts, outputs combined with ``torch.stack(..., dim=1)``
and a weighted sum, a load-balancing auxiliary loss from the mean gate, and per-sample temperatures
held in an ``nn.ParameterList``."""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class MoE(nn.Module):
    def __init__(self, d_in=6, d_hidden=16, n_experts=4, k=2):
        super().__init__()
        self.k = k
        self.experts = nn.ModuleList([nn.Sequential(nn.Linear(d_in, d_hidden), nn.GELU()) for _ in range(n_experts)])
        self.gate = nn.Linear(d_in, n_experts)
        self.heads = nn.ModuleDict({"reg": nn.Linear(d_hidden, 1), "cls": nn.Linear(d_hidden, 3)})
        self.temperatures = nn.ParameterList([nn.Parameter(torch.ones(1)) for _ in range(2)])

    def forward(self, x):
        logits = self.gate(x) / self.temperatures[0]
        top_vals, top_idx = torch.topk(logits, self.k, dim=-1)
        mask = torch.zeros_like(logits).scatter(1, top_idx, 1.0)
        gates = F.softmax(logits.masked_fill(mask == 0, float("-inf")), dim=-1)
        outputs = torch.stack([expert(x) for expert in self.experts], dim=1)
        mixed = (gates.unsqueeze(-1) * outputs).sum(dim=1)
        return self.heads["reg"](mixed).squeeze(-1), self.heads["cls"](mixed) / self.temperatures[1], gates


def build():
    return MoE()


def train(model, stochastic=False):
    rng = np.random.default_rng(24)
    x = torch.tensor(rng.standard_normal((64, 6)).astype(np.float32))
    y_reg = x[:, 0] * x[:, 1]
    y_cls = (x[:, 2] > 0).long() + (x[:, 3] > 1).long()
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    for step in range(40):
        optimizer.zero_grad()
        reg, cls, gates = model(x)
        balance = gates.mean(0)
        aux = (balance * balance).sum() * gates.size(1)
        loss = F.mse_loss(reg, y_reg) + F.cross_entropy(cls, y_cls) + 0.01 * aux
        loss.backward()
        optimizer.step()
    return loss.item()
