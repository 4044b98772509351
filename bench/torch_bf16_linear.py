"""PyTorch bf16 Linear (oneDNN on AMX) at two model shapes: GF/s, median of 15 after 3 warm-ups.

Usage: python bench/torch_bf16_linear.py THREADS  (BENCHMARKS.md, session 9: alternated with
`VIDATTN_DEMO_BF16=1 VIDATTN_DEMO_SHAPES="1576x768x2304;1569x3072x768" vidattn-demo --threads THREADS`).
"""
import torch, time, sys
torch.set_num_threads(int(sys.argv[1]))
for (m,k,n) in [(1576,768,2304),(1569,3072,768)]:
    x=torch.randn(m,k).bfloat16(); w=torch.randn(n,k).bfloat16(); b=torch.randn(n).bfloat16()
    for _ in range(3): torch.nn.functional.linear(x,w,b)
    ts=[]
    for _ in range(15):
        t=time.perf_counter(); torch.nn.functional.linear(x,w,b); ts.append(time.perf_counter()-t)
    ts.sort(); t=ts[7]
    print(f"  torch {sys.argv[1]}T {m}x{k}->{n}: {2*m*k*n/t/1e9:.0f} GF/s")
