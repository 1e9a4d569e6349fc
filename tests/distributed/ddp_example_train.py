"""A torchrun-style DistributedDataParallel training script (pytorch/examples' distributed/ddp-tutorial-series
shape), written for PyTorch, with only its imports changed to run on downslope:

    mpiexec -n 2 python ddp_example_train.py OUT_DIR        # PyTorch: torchrun --nproc_per_node=2 ...

test_ddp.py runs it and checks what it prints and saves. The PyTorch imports it replaces:

    import torch
    import torch.nn.functional as F
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP
    from torch.utils.data import DataLoader, TensorDataset
    from torch.utils.data.distributed import DistributedSampler
"""

import os
import sys

import downslope as torch
import downslope.distributed as dist
import downslope.nn.functional as F
from downslope.nn.parallel import DistributedDataParallel as DDP
from downslope.utils.data import DataLoader, TensorDataset
from downslope.utils.data.distributed import DistributedSampler


def ddp_setup():
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend=backend)
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))


class Trainer:
    def __init__(self, model, train_data, optimizer, save_every, snapshot_path):
        self.local_rank = int(os.environ["LOCAL_RANK"])
        self.global_rank = int(os.environ["RANK"])
        self.model = model
        self.train_data = train_data
        self.optimizer = optimizer
        self.save_every = save_every
        self.snapshot_path = snapshot_path
        self.model = DDP(self.model, device_ids=[self.local_rank])

    def _run_batch(self, source, targets):
        self.optimizer.zero_grad()
        output = self.model(source)
        loss = F.cross_entropy(output, targets)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def _run_epoch(self, epoch):
        self.train_data.sampler.set_epoch(epoch)
        total, batches = 0.0, 0
        for source, targets in self.train_data:
            total += self._run_batch(source, targets)
            batches += 1
        return total / batches

    def _save_snapshot(self, epoch):
        snapshot = {"MODEL_STATE": self.model.module.state_dict(), "EPOCHS_RUN": epoch}
        torch.save(snapshot, self.snapshot_path)
        print(f"Epoch {epoch} | Training snapshot saved at {self.snapshot_path}")

    def train(self, max_epochs):
        for epoch in range(max_epochs):
            loss = self._run_epoch(epoch)
            print(f"[GPU{self.global_rank}] Epoch {epoch} | loss {loss:.4f}")
            if self.global_rank == 0 and epoch % self.save_every == 0:
                self._save_snapshot(epoch)


def load_train_objs():
    torch.manual_seed(0)
    x = torch.randn(256, 10)
    y = (x[:, 0] + x[:, 1] > 0).long()
    train_set = TensorDataset(x, y)
    torch.manual_seed(1 + int(os.environ["RANK"]))  # each rank builds its own start: DDP sends rank 0's
    model = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return train_set, model, optimizer


def prepare_dataloader(dataset, batch_size):
    return DataLoader(
        dataset, batch_size=batch_size, pin_memory=True, shuffle=False, sampler=DistributedSampler(dataset)
    )


def main(save_every, total_epochs, batch_size, snapshot_path):
    ddp_setup()
    dataset, model, optimizer = load_train_objs()
    train_data = prepare_dataloader(dataset, batch_size)
    trainer = Trainer(model, train_data, optimizer, save_every, snapshot_path)
    trainer.train(total_epochs)
    weights = torch.cat([p.detach().reshape(-1) for p in trainer.model.parameters()])
    print(f"[GPU{trainer.global_rank}] weights checksum {float(weights.double().sum()):.12f}")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(save_every=2, total_epochs=4, batch_size=16, snapshot_path=os.path.join(sys.argv[1], "snapshot.pt"))
