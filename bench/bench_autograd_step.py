"""The batch-1 autograd loop of docs/pytorch.md (784–200–100–10, hm-var, HybridSGD) timed: best of 5 × 300
steps, one thread. BENCHMARKS.md, "The cost of the API fixes on the autograd path".

    OMP_NUM_THREADS=1 python bench/bench_autograd_step.py
"""
import time, torch
torch.set_num_threads(1)
from torch import nn
from ferristor.nn import HybridConfig, HybridLinear, Normalize
from ferristor.nn.functional import cross_entropy
from ferristor.optim import HybridSGD
cfg = HybridConfig(mode="hm-var")
m = nn.Sequential(HybridLinear(784,200,config=cfg,seeds=0,name="fc1"), Normalize(), nn.ReLU(),
                  HybridLinear(200,100,config=cfg,seeds=0,name="fc2"), Normalize(), nn.ReLU(),
                  HybridLinear(100,10,config=cfg,seeds=0,name="fc3"), Normalize())
opt = HybridSGD(m.parameters(), lr=0.1, p=0.2, k=100)
x = torch.randn(1,784); y = torch.tensor([3])
def steps(n):
    for _ in range(n):
        loss = cross_entropy(m(x), y); opt.zero_grad(); loss.backward(); opt.step()
steps(100)
best = min((lambda t: (steps(300), time.perf_counter() - t)[1])(time.perf_counter()) for _ in range(5))
print(f"{best / 300 * 1e6:.1f} µs/step")
