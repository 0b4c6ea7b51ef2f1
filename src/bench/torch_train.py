#!/usr/bin/env python3
"""PyTorch baseline for the training benchmark (src/bench/, `ticketsmith bench`).

Trains the same model (LeNet-300-100, the Lottery Ticket paper's Conv-2/4/6, or ResNet-20)
with the same loop as Ticketsmith's trainModel: synthetic data held as
tensors, batches gathered by a shuffled index, Adam, softmax cross-entropy on
logits, and (unless --no-mask) the pruning mask applied to the gradients
before the step and to the weights of conv and dense kernels after it (BN
parameters are not pruned, as in Ticketsmith). Its JSON names the model's
parameter count, BN statistics included, to check against ours. Timing starts after the warm-up
steps. Prints one JSON line on stdout.

torch is optional: without it this prints how to get it on stderr and exits
with status 3, and the benchmark goes on without a baseline.
"""
import argparse
import json
import statistics
import sys
import time

HOW_TO_GET = (
    "PyTorch is not installed, so there is no baseline. Get the CPU wheel with\n"
    "  pip install torch --index-url https://download.pytorch.org/whl/cpu\n"
    "or plain `pip install torch`, or on Debian `apt-get install python3-torch`\n"
    "(1.13, noticeably slower than current wheels)."
)

MODELS = {
    # name: (input shape C,H,W, Adam learning rate of the paper, share of zero
    # pixels: MNIST's 81% as in the TF.js side, none for CIFAR-like input)
    "lenet-300-100": ((1, 28, 28), 1.2e-3, 0.81),
    "conv-2": ((3, 32, 32), 2e-4, 0.0),
    "conv-4": ((3, 32, 32), 3e-4, 0.0),
    "conv-6": ((3, 32, 32), 3e-4, 0.0),
    "resnet-20": ((3, 32, 32), 1e-3, 0.0),
}

# Filters of each 3x3 conv pair of Conv-2/4/6 (src/engine/models/conv.ts).
CONV_BLOCKS = {"conv-2": [64], "conv-4": [64, 128], "conv-6": [64, 128, 256]}


def conv_n(torch, name, classes):
    """Conv-2/4/6 as src/engine/models/conv.ts builds them: 3x3 same convs in pairs, a 2x2 pool after each pair."""
    nn = torch.nn
    layers, c, side = [], 3, 32
    for filters in CONV_BLOCKS[name]:
        for _ in range(2):
            layers += [nn.Conv2d(c, filters, 3, padding=1), nn.ReLU()]
            c = filters
        layers.append(nn.MaxPool2d(2))
        side //= 2
    layers += [
        nn.Flatten(), nn.Linear(c * side * side, 256), nn.ReLU(),
        nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, classes),
    ]
    return nn.Sequential(*layers)


def resnet20(torch, classes):
    """ResNet-20 as src/engine/models/resnet.ts builds it: no conv biases, BN (momentum 0.1 = Keras 0.9,
    eps 1e-5), 1x1 strided projection shortcuts (option B) where the shape changes."""
    nn = torch.nn

    def bn(c):
        return nn.BatchNorm2d(c, eps=1e-5, momentum=0.1)

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(cin, cout, 3, stride, 1, bias=False), bn(cout), nn.ReLU(),
                nn.Conv2d(cout, cout, 3, 1, 1, bias=False), bn(cout),
            )
            self.short = (
                nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), bn(cout))
                if stride != 1 or cin != cout else nn.Identity()
            )

        def forward(self, x):
            return torch.relu(self.body(x) + self.short(x))

    layers = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), bn(16), nn.ReLU()]
    cin = 16
    for s, width in enumerate([16, 32, 64]):
        for b in range(3):
            layers.append(Block(cin, width, 2 if s > 0 and b == 0 else 1))
            cin = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, classes)]
    return nn.Sequential(*layers)


def build(torch, name, classes):
    nn = torch.nn
    if name == "lenet-300-100":
        model = nn.Sequential(
            nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(), nn.Linear(100, classes)
        )
    elif name == "resnet-20":
        model = resnet20(torch, classes)
    else:
        model = conv_n(torch, name, classes)
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


def count_params(model):
    """Parameters plus BN running statistics: what Keras's countParams() counts for the same model."""
    stats = sum(b.numel() for name, b in model.named_buffers() if not name.endswith("num_batches_tracked"))
    return sum(p.numel() for p in model.parameters()) + stats


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=sorted(MODELS), required=True)
    p.add_argument("--batch", type=int, default=60)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--max-steps", type=int, default=100000)
    p.add_argument("--seconds", type=float, default=10.0, help="stop after this many seconds of measured steps")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--examples", type=int, default=0, help="training examples (default 20 batches)")
    p.add_argument("--no-mask", action="store_true", help="plain training loop, no mask multiplications")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()

    try:
        import torch
    except ImportError:
        print(HOW_TO_GET, file=sys.stderr)
        return 3

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    shape, lr, zeros = MODELS[args.model]
    classes = 10
    n = args.examples or args.batch * 20
    x = torch.rand((n, *shape))
    x[torch.rand((n, *shape)) < zeros] = 0
    y = torch.randint(0, classes, (n,))
    model = build(torch, args.model, classes)
    masks = [] if args.no_mask else [(w, torch.ones_like(w)) for name, w in model.named_parameters() if name.endswith("weight") and w.dim() > 1]
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()

    order = torch.randperm(n)
    cursor = 0

    def step():
        nonlocal order, cursor
        if cursor + args.batch > n:
            order = torch.randperm(n)
            cursor = 0
        idx = order[cursor:cursor + args.batch]
        cursor += args.batch
        xb = x.index_select(0, idx)
        yb = y.index_select(0, idx)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        for w, m in masks:
            w.grad.mul_(m)
        opt.step()
        with torch.no_grad():
            for w, m in masks:
                w.mul_(m)

    model.train()
    for _ in range(max(0, args.warmup)):
        step()
    times = []
    started = time.perf_counter()
    last = started
    while len(times) < args.max_steps:
        step()
        now = time.perf_counter()
        times.append(now - last)
        last = now
        if now - started >= args.seconds:
            break
    seconds = sum(times)
    print(json.dumps({
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "model": args.model,
        "params": count_params(model),
        "batchSize": args.batch,
        "masked": not args.no_mask,
        "warmupSteps": args.warmup,
        "steps": len(times),
        "seconds": seconds,
        "examplesPerSecond": len(times) * args.batch / seconds,
        "medianStepMs": statistics.median(times) * 1000,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
