"""The training loop of the transfer-learning tutorial (``train_model``): phases 'train'/'val'
with ``model.train()``/``model.eval()``, ``torch.set_grad_enabled(phase == 'train')``,
``_, preds = torch.max(outputs, 1)``, ``running_corrects += torch.sum(preds == labels.data)``,
``running_corrects.double() / dataset_sizes[phase]``, the best weights kept by deepcopy; an
``@torch.no_grad()`` evaluation function and a manual learning-rate decay over ``param_groups``."""

import copy

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
from torch.optim import lr_scheduler
from torch.utils.data import DataLoader, TensorDataset


def build():
    return nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(24, 3))


@torch.no_grad()
def evaluate(model, loader, criterion):
    model.eval()
    total = 0.0
    for inputs, labels in loader:
        total += criterion(model(inputs), labels).item() * inputs.size(0)
    return total / len(loader.dataset)


def train_model(model, dataloaders, dataset_sizes, criterion, optimizer, scheduler, num_epochs=4):
    best_model_wts = copy.deepcopy(model.state_dict())
    best_acc = 0.0
    for epoch in range(num_epochs):
        for phase in ["train", "val"]:
            if phase == "train":
                model.train()
            else:
                model.eval()
            running_loss = 0.0
            running_corrects = 0
            for inputs, labels in dataloaders[phase]:
                optimizer.zero_grad()
                with torch.set_grad_enabled(phase == "train"):
                    outputs = model(inputs)
                    _, preds = torch.max(outputs, 1)
                    loss = criterion(outputs, labels)
                    if phase == "train":
                        loss.backward()
                        optimizer.step()
                running_loss += loss.item() * inputs.size(0)
                running_corrects += torch.sum(preds == labels.data)
            if phase == "train":
                scheduler.step()
            epoch_loss = running_loss / dataset_sizes[phase]
            epoch_acc = running_corrects.double() / dataset_sizes[phase]
            print(f"{phase} Loss: {epoch_loss:.4f} Acc: {epoch_acc:.4f}")
            if phase == "val" and epoch_acc > best_acc:
                best_acc = epoch_acc
                best_model_wts = copy.deepcopy(model.state_dict())
    model.load_state_dict(best_model_wts)
    return model


def train(model, stochastic=False):
    rng = np.random.default_rng(26)
    images = torch.tensor(rng.standard_normal((60, 3, 8, 8)).astype(np.float32))
    labels = torch.tensor(rng.integers(0, 3, 60))
    datasets = {"train": TensorDataset(images[:40], labels[:40]), "val": TensorDataset(images[40:], labels[40:])}
    dataloaders = {
        x: DataLoader(datasets[x], batch_size=10, shuffle=stochastic and x == "train") for x in ["train", "val"]
    }
    dataset_sizes = {x: len(datasets[x]) for x in ["train", "val"]}
    criterion = nn.CrossEntropyLoss()
    optimizer_ft = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    exp_lr_scheduler = lr_scheduler.StepLR(optimizer_ft, step_size=2, gamma=0.1)
    model = train_model(model, dataloaders, dataset_sizes, criterion, optimizer_ft, exp_lr_scheduler)
    for param_group in optimizer_ft.param_groups:
        param_group["lr"] = param_group["lr"] * 0.5
    return evaluate(model, dataloaders["val"], criterion)
