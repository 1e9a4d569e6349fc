"""The DQN tutorial's update on a replay buffer of synthetic transitions (no simulator): a policy
and a target network synchronized with ``load_state_dict(policy_net.state_dict())`` and softly with
``target_param.data.copy_(TAU * param.data + (1 - TAU) * target_param.data)``, Q values picked by
``gather(1, action_batch)``, ``max(1)[0]`` of the target network under ``torch.no_grad()``, a mask of
non-final states, SmoothL1Loss, AdamW(amsgrad=True) and ``clip_grad_value_(..., 100)``."""

from collections import namedtuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim

Transition = namedtuple("Transition", ("state", "action", "next_state", "reward"))
BATCH_SIZE, GAMMA, TAU, LR = 16, 0.9, 0.05, 1e-3


class DQN(nn.Module):
    def __init__(self, n_observations, n_actions):
        super(DQN, self).__init__()
        self.layer1 = nn.Linear(n_observations, 32)
        self.layer2 = nn.Linear(32, 32)
        self.layer3 = nn.Linear(32, n_actions)

    def forward(self, x):
        x = F.relu(self.layer1(x))
        x = F.relu(self.layer2(x))
        return self.layer3(x)


class Agent(nn.Module):
    def __init__(self):
        super().__init__()
        self.policy_net = DQN(4, 2)
        self.target_net = DQN(4, 2)
        self.target_net.load_state_dict(self.policy_net.state_dict())


def make_memory(rng, n=160):
    memory = []
    for _ in range(n):
        state = torch.tensor(rng.standard_normal((1, 4)).astype(np.float32))
        action = torch.tensor([[int(rng.integers(0, 2))]], dtype=torch.long)
        done = rng.random() < 0.2
        next_state = None if done else state + 0.1 * torch.tensor(rng.standard_normal((1, 4)).astype(np.float32))
        reward = torch.tensor([float(state[0, 0] > 0) * (1.0 if action.item() == 1 else -1.0)])
        memory.append(Transition(state, action, next_state, reward))
    return memory


def optimize_model(agent, optimizer, transitions):
    batch = Transition(*zip(*transitions))
    non_final_mask = torch.tensor(tuple(map(lambda s: s is not None, batch.next_state)), dtype=torch.bool)
    non_final_next_states = torch.cat([s for s in batch.next_state if s is not None])
    state_batch = torch.cat(batch.state)
    action_batch = torch.cat(batch.action)
    reward_batch = torch.cat(batch.reward)
    state_action_values = agent.policy_net(state_batch).gather(1, action_batch)
    next_state_values = torch.zeros(len(transitions))
    with torch.no_grad():
        next_state_values[non_final_mask] = agent.target_net(non_final_next_states).max(1)[0]
    expected_state_action_values = (next_state_values * GAMMA) + reward_batch
    criterion = nn.SmoothL1Loss()
    loss = criterion(state_action_values, expected_state_action_values.unsqueeze(1))
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_value_(agent.policy_net.parameters(), 100)
    optimizer.step()
    return loss.item()


def build():
    return Agent()


def train(agent, stochastic=False):
    rng = np.random.default_rng(13)
    memory = make_memory(rng)
    optimizer = optim.AdamW(agent.policy_net.parameters(), lr=LR, amsgrad=True)
    for step in range(40):
        picks = rng.choice(len(memory), BATCH_SIZE, replace=False)
        loss = optimize_model(agent, optimizer, [memory[i] for i in picks])
        target_net_state_dict = agent.target_net.state_dict()
        policy_net_state_dict = agent.policy_net.state_dict()
        for key in policy_net_state_dict:
            target_net_state_dict[key] = policy_net_state_dict[key] * TAU + target_net_state_dict[key] * (1 - TAU)
        agent.target_net.load_state_dict(target_net_state_dict)
        for target_param, param in zip(agent.target_net.layer1.parameters(), agent.policy_net.layer1.parameters()):
            target_param.data.copy_(TAU * param.data + (1 - TAU) * target_param.data)
    return loss
