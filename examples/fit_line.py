"""Fit a line y = w x + b by plain gradient descent and compare with least squares."""

import numpy as np

import downslope as ds

ds.manual_seed(0)
x = ds.rand(200, 1) * 4 - 2  # 200 points on [-2, 2)
y = 3.0 * x + 2.0 + 0.3 * ds.randn(200, 1)  # true slope 3, intercept 2, noise 0.3
w = ds.zeros(1, 1, requires_grad=True)
b = ds.zeros(1, requires_grad=True)
lr = 0.1
for _ in range(500):
    loss = ((x @ w + b - y) ** 2).mean()  # mean squared error
    w.grad = b.grad = None  # clear, or gradients accumulate
    loss.backward()  # d loss / d w and d loss / d b
    with ds.no_grad():
        w.array -= lr * w.grad.array  # step against the gradient
        b.array -= lr * b.grad.array
A = np.hstack([x.numpy(), np.ones((200, 1), np.float32)])
(slope, intercept), *_ = np.linalg.lstsq(A, y.numpy()[:, 0], rcond=None)
print(f"gradient descent: slope {w.item():.4f}  intercept {b.item():.4f}  (final MSE {loss.item():.4f})")
print(f"least squares   : slope {slope:.4f}  intercept {intercept:.4f}")
