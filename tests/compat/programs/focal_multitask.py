"""A multi-task network with a hand-written focal loss module (``binary_cross_entropy_with_logits``
with ``reduction='none'``, ``torch.exp(-bce)``, ``(1 - pt) ** gamma``), a regression head with
``F.l1_loss``, the two losses backpropagated separately (``retain_graph=True`` on the first), a
LambdaLR warm-up read back from ``optimizer.param_groups[0]['lr']``, and the best weights saved to
a file path with ``torch.save``/``torch.load``."""

import os
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class FocalLoss(nn.Module):
    def __init__(self, alpha=0.25, gamma=2.0, reduction="mean"):
        super(FocalLoss, self).__init__()
        self.alpha, self.gamma, self.reduction = alpha, gamma, reduction

    def forward(self, inputs, targets):
        bce_loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
        pt = torch.exp(-bce_loss)
        f_loss = self.alpha * (1 - pt) ** self.gamma * bce_loss
        if self.reduction == "mean":
            return torch.mean(f_loss)
        return torch.sum(f_loss)


class MultiTask(nn.Module):
    def __init__(self):
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(6, 24), nn.SiLU(), nn.Linear(24, 24), nn.SiLU())
        self.cls_head = nn.Linear(24, 1)
        self.reg_head = nn.Linear(24, 2)

    def forward(self, x):
        h = self.trunk(x)
        return self.cls_head(h).squeeze(-1), self.reg_head(h)


def build():
    return MultiTask()


def train(model, stochastic=False):
    rng = np.random.default_rng(15)
    x = torch.tensor(rng.standard_normal((96, 6)).astype(np.float32))
    y_cls = (x[:, 0] * x[:, 1] > 0.3).float()
    y_reg = torch.stack([x[:, 2].sin(), x[:, 3] * x[:, 4]], dim=1)
    focal = FocalLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    warmup = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=lambda step: min(1.0, (step + 1) / 10))
    best, path = float("inf"), os.path.join(tempfile.mkdtemp(), "best.pt")
    for step in range(40):
        optimizer.zero_grad()
        logits, reg = model(x)
        loss_cls = focal(logits, y_cls)
        loss_reg = F.l1_loss(reg, y_reg)
        loss_cls.backward(retain_graph=True)
        (0.5 * loss_reg).backward()
        optimizer.step()
        warmup.step()
        total = loss_cls.item() + 0.5 * loss_reg.item()
        if total < best:
            best = total
            torch.save(model.state_dict(), path)
        if step % 10 == 0:
            print(
                f"step {step} focal {loss_cls.item():.4f} l1 {loss_reg.item():.4f} lr {optimizer.param_groups[0]['lr']:.4f}"
            )
    model.load_state_dict(torch.load(path))
    with torch.no_grad():
        logits, reg = model(x)
        return focal(logits, y_cls).item() + 0.5 * F.l1_loss(reg, y_reg).item()
