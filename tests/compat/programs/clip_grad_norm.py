"""Training a deep tanh network with a large learning rate held in check by gradient clipping:
``nn.utils.clip_grad_norm_`` (its returned total norm logged), ``clip_grad_value_``, Adam with
a CosineAnnealingLR schedule, and ``parameters_to_vector`` to report the weight norm."""

import numpy as np
import torch
import torch.nn as nn
from torch.optim.lr_scheduler import CosineAnnealingLR


def build():
    layers = []
    for i in range(6):
        layers += [nn.Linear(3 if i == 0 else 32, 32), nn.Tanh()]
    return nn.Sequential(*layers, nn.Linear(32, 1))


def train(model, stochastic=False):
    rng = np.random.default_rng(1)
    x = torch.tensor(rng.uniform(-2, 2, (256, 3)).astype(np.float32))
    y = (x[:, 0] * x[:, 1] - torch.sin(3 * x[:, 2])).unsqueeze(1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    scheduler = CosineAnnealingLR(optimizer, T_max=60)
    norms = []
    for step in range(60):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        total_norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.5)
        nn.utils.clip_grad_value_(model.parameters(), clip_value=0.05)
        norms.append(float(total_norm))
        optimizer.step()
        scheduler.step()
        if step % 20 == 0:
            print(
                "step {:3d} loss {:.4f} grad norm {:.3f} lr {:.5f}".format(
                    step, loss.item(), norms[-1], scheduler.get_last_lr()[0]
                )
            )
    weight_norm = nn.utils.parameters_to_vector(model.parameters()).norm().item()
    print("final weight norm {:.3f}".format(weight_norm))
    return loss.item()
