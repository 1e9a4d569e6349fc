"""Sequence regression with nn.GRU (batch_first) and the initializers people write by hand:
xavier_uniform_ for input weights, orthogonal_ for recurrent weights, constant_ biases,
kaiming_normal_ for the head, applied over ``named_parameters()``; AdamW with a StepLR schedule
and ``model.zero_grad(set_to_none=True)``."""

import numpy as np
import torch
import torch.nn as nn
from torch.optim.lr_scheduler import StepLR


class SequenceRegressor(nn.Module):
    def __init__(self, input_size=4, hidden_size=24):
        super().__init__()
        self.gru = nn.GRU(input_size, hidden_size, num_layers=1, batch_first=True)
        self.head = nn.Linear(hidden_size, 1)
        for name, param in self.gru.named_parameters():
            if "weight_ih" in name:
                nn.init.xavier_uniform_(param)
            elif "weight_hh" in name:
                nn.init.orthogonal_(param)
            elif "bias" in name:
                nn.init.constant_(param, 0.0)
        nn.init.kaiming_normal_(self.head.weight, mode="fan_in", nonlinearity="linear")
        nn.init.zeros_(self.head.bias)

    def forward(self, x):
        out, h_n = self.gru(x)
        return self.head(out[:, -1, :]).squeeze(-1)


def build():
    return SequenceRegressor()


def train(model, stochastic=False):
    rng = np.random.default_rng(3)
    x = torch.from_numpy(rng.standard_normal((96, 10, 4)).astype(np.float32))
    y = x[:, :, 0].cumsum(dim=1)[:, -1] * 0.3 + x[:, -1, 1]
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.01)
    scheduler = StepLR(optimizer, step_size=10, gamma=0.5)
    loss_fn = nn.MSELoss()
    for epoch in range(30):
        model.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        scheduler.step()
    print("loss {:.5f}".format(loss.item()))
    return loss.item()
