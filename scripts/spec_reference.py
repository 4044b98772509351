"""Torch re-implementations, written from our reading of the papers and upstream code
(docs/attention.md, docs/models.md), of the reference systems that have no installable package (Motionformer's trajectory attention and its
approximation helpers). Used only by scripts/make_fixtures.py to make golden outputs."""
import math

import torch


def _softmax(x, dim=-1):
    return torch.softmax(x, dim=dim)


def spatial_exact(q, k, v, F, P):
    """Trajectory step 2 (docs/attention.md): q, k, v [B', N, d] (unscaled) -> Ytilde [B', N, F, d]."""
    d = q.shape[-1]
    logits = (q * d ** -0.5) @ k.transpose(-1, -2)                    # [B', N, N]
    a = _softmax(logits.reshape(*logits.shape[:2], F, P))           # per frame over P
    return torch.einsum("bnfp,bfpd->bnfd", a, v.reshape(v.shape[0], F, P, d))


def _segment_means(x, L, F, P):
    """Nyström spatial landmarks: patch-major reorder, L contiguous (uneven) segments."""
    Bp, N, d = x.shape
    x = x.reshape(Bp, F, P, d).transpose(1, 2).reshape(Bp, N, d)   # (f, p) -> (p, f)
    if N % L == 0:
        return x.reshape(Bp, L, N // L, d).mean(2)
    segs = N // L
    n_short = (segs + 1) * L - N
    a = x[:, : n_short * segs].reshape(Bp, n_short, segs, d).mean(2)
    b = x[:, n_short * segs:].reshape(Bp, L - n_short, segs + 1, d).mean(2)
    return torch.cat([a, b], dim=1)


def iterative_inv(K, n_iter=6):
    """Nyström pseudo-inverse start (docs/attention.md), init 'exact': Z0 = K^T / max column sum, per batch element."""
    I = torch.eye(K.shape[-1], dtype=K.dtype)
    Z = K.transpose(-1, -2) / K.sum(dim=-2).amax(dim=-1)[:, None, None]
    for _ in range(n_iter):
        KZ = K @ Z
        Z = 0.25 * Z @ (13 * I - KZ @ (15 * I - KZ @ (7 * I - KZ)))
    return Z


def spatial_nystrom(q, k, v, F, P, L):
    d = q.shape[-1]
    q = q * d ** -0.5
    lq, lk = _segment_means(q, L, F, P), _segment_means(k, L, F, P)
    K1 = _softmax(q @ lk.transpose(-1, -2))                        # [B', N, L]
    K2 = _softmax(lq @ lk.transpose(-1, -2))                       # [B', L, L]
    kf, vf = k.reshape(k.shape[0], F, P, d), v.reshape(v.shape[0], F, P, d)
    K3 = _softmax(torch.einsum("bld,bfpd->blfp", lq, kf))          # [B', L, F, P]
    M = torch.einsum("blfp,bfpd->blfd", K3, vf)
    W = K1 @ iterative_inv(K2)
    return torch.einsum("bnl,blfd->bnfd", W, M)


def orthogonal_landmarks(q, L, start):
    """Orthoformer landmark choice (docs/attention.md): greedy max-min |cosine| selection from scaled q, given start index."""
    u = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    Bp, N, _ = q.shape
    out = []
    for b in range(Bp):
        selected = torch.zeros(N, dtype=torch.bool)
        selected[start] = True
        last = start
        cols = []
        for _ in range(L - 1):
            cols.append((u[b] @ u[b, last]).abs())
            c = torch.stack(cols, dim=1).max(dim=1).values.clone()
            c[selected] = 10.0
            last = int(torch.argmin(c))
            selected[last] = True
        out.append(q[b][selected])                                   # ascending token order
    return torch.stack(out)


def spatial_orthoformer(q, k, v, F, P, L, start):
    d = q.shape[-1]
    q, k = q * d ** -0.25, k * d ** -0.25
    lm = orthogonal_landmarks(q, L, start)
    K1 = _softmax(q @ lm.transpose(-1, -2))
    kf, vf = k.reshape(k.shape[0], F, P, d), v.reshape(v.shape[0], F, P, d)
    K2 = _softmax(torch.einsum("bld,bfpd->blfp", lm, kf))
    return torch.einsum("bnl,blfd->bnfd", K1, torch.einsum("blfp,bfpd->blfd", K2, vf))


def favor_features(x, omega, is_query, eps=1e-6):
    """Performer softmax_kernel_transformation (docs/attention.md) on x [B', n, d] with Ω [m, d]."""
    d, m = x.shape[-1], omega.shape[0]
    xs = x * d ** -0.25
    U = xs @ omega.T
    h = (xs ** 2).sum(-1, keepdim=True) / 2
    mx = U.amax(dim=-1, keepdim=True) if is_query else U.amax(dim=(-1, -2), keepdim=True)
    return m ** -0.5 * (torch.exp(U - h - mx) + eps)


def spatial_performer(q, k, v, F, P, omega):
    d = q.shape[-1]
    pq, pk = favor_features(q, omega, True), favor_features(k, omega, False)
    pk = pk.reshape(pk.shape[0], F, P, -1)
    vf = v.reshape(v.shape[0], F, P, d)
    KV = torch.einsum("bfpm,bfpd->bfmd", pk, vf)
    z = pk.sum(2)                                                    # [B', F, m]
    num = torch.einsum("bnm,bfmd->bnfd", pq, KV)
    den = torch.einsum("bnm,bfm->bnf", pq, z)
    return num / den[..., None]


def trajectory_attention(q, k, v, Wq, bq, Wkv, bkv, F, P, use_original_code=True, spatial=spatial_exact):
    """Trajectory attention (docs/attention.md) on heads-split q, k, v [B, H, 1+N, d]; returns [B, 1+N, C] before `proj`."""
    B, H, T, d = q.shape
    N, C = T - 1, H * d
    scale = d ** -0.5
    cls_out = _softmax((q[:, :, :1] * scale) @ k.transpose(-1, -2)) @ v            # [B, H, 1, d]
    flat = lambda t: t[:, :, 1:].reshape(B * H, N, d)
    Y = spatial(flat(q), flat(k), flat(v), F, P).reshape(B, H, N, F, d)
    Ym = Y.permute(0, 2, 3, 1, 4).reshape(B, N, F, C)                               # merge heads
    frame = torch.arange(N) // P
    yhat = Ym[:, torch.arange(N), frame]                                            # [B, N, C]
    q2 = (yhat @ Wq.T + bq).reshape(B, N, H, d).transpose(1, 2) * scale              # [B, H, N, d]
    kv2 = Ym @ Wkv.T + bkv                                                          # [B, N, F, 2C]
    k2 = kv2[..., :C].reshape(B, N, F, H, d).permute(0, 3, 1, 2, 4)
    v2 = kv2[..., C:].reshape(B, N, F, H, d).permute(0, 3, 1, 2, 4)
    a = _softmax(torch.einsum("bhnd,bhnfd->bhnf", q2, k2))
    vals = Y if use_original_code else v2
    out = torch.einsum("bhnf,bhnfd->bhnd", a, vals)
    out = torch.cat([cls_out, out], dim=2)                                          # [B, H, 1+N, d]
    return out.transpose(1, 2).reshape(B, T, C)


class MotionformerRef(torch.nn.Module):
    """Motionformer's VisionTransformer (docs/models.md) re-implemented in torch from
    the spec, with its state-dict names, for golden outputs. Forward returns logits (the
    eval-mode softmax of the original is left to the caller)."""

    def __init__(self, cfg):
        super().__init__()
        nn = torch.nn
        self.cfg = cfg
        C, p, pt = cfg["embed_dim"], cfg["patch_size"], cfg["patch_size_temp"]
        self.P = (cfg["img_size"] // p) ** 2
        self.Tp = cfg["temporal_resolution"]
        self.grid = None
        self.cls_token = nn.Parameter(torch.randn(1, 1, C) * 0.5)
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + self.P, C) * 0.5)
        self.temp_embed = nn.Parameter(torch.randn(1, self.Tp, C) * 0.5)
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, C, p, stride=p)
        self.patch_embed_3d = nn.Module()
        self.patch_embed_3d.proj = nn.Conv3d(3, C, (pt, p, p), stride=(pt, p, p))
        self.blocks = nn.ModuleList()
        H, kind = cfg["num_heads"], cfg["attn_layer"]
        for _ in range(cfg["depth"]):
            b = nn.Module()
            b.norm1, b.norm2 = nn.LayerNorm(C, eps=1e-6), nn.LayerNorm(C, eps=1e-6)
            b.attn = nn.Module()
            b.attn.qkv, b.attn.proj = nn.Linear(C, 3 * C, bias=cfg["qkv_bias"]), nn.Linear(C, C)
            if kind == "trajectory":
                b.attn.proj_q, b.attn.proj_kv = nn.Linear(C, C, bias=cfg["qkv_bias"]), nn.Linear(C, 2 * C, bias=cfg["qkv_bias"])
                b.attn.register_buffer("performer_projection", torch.randn(cfg["approx_attn_dim"], C // H))
            if kind == "divided":
                b.timeattn = nn.Module()
                b.timeattn.qkv, b.timeattn.proj = nn.Linear(C, 3 * C, bias=cfg["qkv_bias"]), nn.Linear(C, C)
                b.norm3 = nn.LayerNorm(C, eps=1e-6)
            b.mlp = nn.Module()
            b.mlp.fc1, b.mlp.fc2 = nn.Linear(C, int(C * cfg["mlp_ratio"])), nn.Linear(int(C * cfg["mlp_ratio"]), C)
            self.blocks.append(b)
        self.norm = nn.LayerNorm(C, eps=1e-6)
        self.pre_logits = nn.Module()
        self.pre_logits.fc = nn.Linear(C, C)
        self.head = nn.Linear(C, cfg["num_classes"])
        with torch.no_grad():
            for n_, prm in self.named_parameters():
                if "norm" in n_:
                    prm.add_(torch.randn_like(prm) * 0.3)

    def _heads(self, t):
        B, N, C = t.shape
        H = self.cfg["num_heads"]
        return t.reshape(B, N, H, C // H).transpose(1, 2)

    def _attn_joint(self, a, x):
        q, k, v = (self._heads(t) for t in a.qkv(x).chunk(3, dim=-1))
        d = q.shape[-1]
        o = _softmax(q * d ** -0.5 @ k.transpose(-1, -2)) @ v
        return a.proj(o.transpose(1, 2).reshape(x.shape))

    def _attn_divided(self, a, x, grouping):
        q, k, v = (self._heads(t) for t in a.qkv(x).chunk(3, dim=-1))     # [B, H, 1+N, d]
        B, H, T, d = q.shape
        q = q * d ** -0.5
        F, P = self.Tp, self.P
        cls_out = _softmax(q[:, :, :1] @ k.transpose(-1, -2)) @ v
        def grp(t):  # patches -> [B, H, G, L, d]
            t = t[:, :, 1:].reshape(B, H, F, P, d)
            return t.transpose(2, 3) if grouping == "time" else t
        qg, kg, vg = grp(q), grp(k), grp(v)
        G, L = qg.shape[2], qg.shape[3]
        kc = torch.cat([k[:, :, None, :1].expand(B, H, G, 1, d), kg], dim=3)
        vc = torch.cat([v[:, :, None, :1].expand(B, H, G, 1, d), vg], dim=3)
        o = _softmax(qg @ kc.transpose(-1, -2)) @ vc
        o = o.transpose(2, 3) if grouping == "time" else o
        o = torch.cat([cls_out, o.reshape(B, H, F * P, d)], dim=2)
        return a.proj(o.transpose(1, 2).reshape(x.shape))

    def _attn_trajectory(self, a, x):
        c = self.cfg
        q, k, v = (self._heads(t) for t in a.qkv(x).chunk(3, dim=-1))
        approx, L = c["approx_attn_type"], c["approx_attn_dim"]
        if approx == "none":
            spatial = spatial_exact
        elif approx == "nystrom":
            spatial = lambda q_, k_, v_, F_, P_: spatial_nystrom(q_, k_, v_, F_, P_, L)
        elif approx == "orthoformer":
            spatial = lambda q_, k_, v_, F_, P_: spatial_orthoformer(q_, k_, v_, F_, P_, L, c["orthoformer_start"])
        else:
            spatial = lambda q_, k_, v_, F_, P_: spatial_performer(q_, k_, v_, F_, P_, a.performer_projection)
        y = trajectory_attention(q, k, v, a.proj_q.weight, a.proj_q.bias, a.proj_kv.weight, a.proj_kv.bias,
                                 self.Tp, self.P, use_original_code=c["use_original_code"], spatial=spatial)
        return a.proj(y)

    def forward(self, video):                       # video [B, T, 3, H, W]
        c = self.cfg
        x = self.patch_embed_3d.proj(video.transpose(1, 2))                     # [B, C, T', h, w]
        B, C = x.shape[:2]
        h2, w2 = x.shape[3], x.shape[4]
        self.P = h2 * w2                                                          # patches of this input
        x = x.flatten(2).transpose(1, 2)                                          # frame-major tokens
        space = self.pos_embed[:, 1:]
        side = int(round(space.shape[1] ** 0.5))
        if (h2, w2) != (side, side):   # bicubic resize of the spatial table, as for other crops
            grid = space.reshape(1, side, side, C).permute(0, 3, 1, 2)
            space = torch.nn.functional.interpolate(grid, size=(h2, w2), mode="bicubic", align_corners=False)
            space = space.permute(0, 2, 3, 1).reshape(1, h2 * w2, C)
        pos = (space[:, :, None] + self.temp_embed[:, None]).transpose(1, 2).reshape(1, -1, C)
        x = torch.cat([self.cls_token.expand(B, 1, C) + self.pos_embed[:, :1], x + pos], dim=1)
        for b in self.blocks:
            if c["attn_layer"] == "divided":
                x = x + self._attn_divided(b.timeattn, b.norm3(x), "time")
                x = x + self._attn_divided(b.attn, b.norm1(x), "space")
            elif c["attn_layer"] == "joint":
                x = x + self._attn_joint(b.attn, b.norm1(x))
            else:
                x = x + self._attn_trajectory(b.attn, b.norm1(x))
            x = x + b.mlp.fc2(torch.nn.functional.gelu(b.mlp.fc1(b.norm2(x))))
        h = self.norm(x)[:, 0]
        if c["use_mlp"]:
            h = torch.tanh(self.pre_logits.fc(h))
        return self.head(h)


def _lucid_tables(F, hp, wp, d):
    """timesformer-pytorch's rotary tables (FastTimeSformer uses the same ones)."""
    from timesformer_pytorch.rotary import AxialRotaryEmbedding, RotaryEmbedding
    ts, tc = RotaryEmbedding(d)(F, device="cpu")
    is_, ic = AxialRotaryEmbedding(d)(hp, wp, device="cpu")
    return (ts[0], tc[0]), (is_[0], ic[0])


def _rotate(x, table, skip_first):
    """x [..., L, d]; rotates rows (all, or all but the first) with table rows 0..."""
    sin, cos = table
    def rot(t):
        t2 = torch.stack((-t[..., 1::2], t[..., 0::2]), dim=-1).flatten(-2)
        return t * cos + t2 * sin
    if skip_first:
        return torch.cat([x[..., :1, :], rot(x[..., 1:, :])], dim=-2)
    return rot(x)


class FastTimeSformerRef(torch.nn.Module):
    """FastTimeSformer (docs/models.md) re-implemented in torch from the spec, with its
    state-dict names, in both modes: parity (the repository's computations: frame-fastest
    regrouping of frame-major tokens, Fastformer's scalar per token, Performer as raw linear
    attention, joint blocks without residuals) and intended (docs/models.md, fasttimesformer)."""

    def __init__(self, cfg):
        super().__init__()
        nn = torch.nn
        self.cfg = c = cfg
        D, dh, p = c["dim"], c["dim_head"], c["patch_size"]
        self.hp, self.wp = c["height"] // p, c["width"] // p
        self.P, self.F = self.hp * self.wp, c["frames"]
        self.project_in = nn.Linear(c["channels"] * p * p, D)
        self.cls_token = nn.Parameter(torch.randn(1, D))
        if not c["rotary_emb"]:
            self.pos_emb = nn.Embedding(self.F * self.P + 1, D)
        self.blocks = nn.ModuleList()
        mech = c["attn_mechanism"]
        def attn():
            m = nn.Module()
            m.norm = nn.LayerNorm(D)
            m.fn = nn.Module()
            m.fn.to_qkv, m.fn.to_out = nn.Linear(D, 3 * D, bias=False), nn.Linear(D, D)
            if mech == "fastformer":
                m.fn.Wq, m.fn.Wk = nn.Linear(dh, 1, bias=False), nn.Linear(dh, 1, bias=False)
            if mech == "performer":
                m.fn.register_buffer("projection_matrix", torch.randn(c.get("nb_features", 24), dh))
            return m
        for _ in range(c["depth"]):
            b = nn.Module()
            b.attn_s = attn()
            if c["attn_type"] == "divided":
                b.attn_t, b.fc_t = attn(), nn.Linear(D, D)
            b.mlp = nn.Module()
            b.mlp.norm = nn.LayerNorm(D)
            b.mlp.fn = nn.Module()
            b.mlp.fn.net = nn.Sequential(nn.Linear(D, 8 * D), nn.Identity(), nn.Identity(), nn.Linear(4 * D, D))
            self.blocks.append(b)
        self.to_out = nn.Module()
        self.to_out.norm, self.to_out.fn = nn.LayerNorm(D), nn.Linear(D, c["num_classes"])
        with torch.no_grad():
            for n_, prm in self.named_parameters():
                if "norm" in n_ or "cls" in n_:
                    prm.add_(torch.randn_like(prm) * 0.3)

    def _attend(self, m, x, table, cls_first):
        c = self.cfg
        parity, mech, dh = c["parity"], c["attn_mechanism"], c["dim_head"]
        x = m.norm(x)
        qo, ko, vo = m.fn.to_qkv(x).chunk(3, dim=-1)
        G, L, D = x.shape
        H = D // dh
        heads = lambda t: t.reshape(G, L, H, dh).transpose(1, 2)
        q, k, v = heads(qo), heads(ko), heads(vo)
        if table is not None:
            q, k = _rotate(q, table, cls_first), _rotate(k, table, cls_first)
        if mech == "regular":
            o = _softmax(q @ k.transpose(-1, -2) * dh ** -0.5) @ v
        elif mech == "fastformer":
            s = dh ** -0.5
            alpha = _softmax(m.fn.Wq(q) * s, dim=-2)
            qg = (alpha * q).sum(-2, keepdim=True)
            pp = qg * k
            beta = _softmax(m.fn.Wk(pp) * s, dim=-2)
            kg = (beta * pp).sum(-1, keepdim=True) if parity else (beta * pp).sum(-2, keepdim=True)
            o = kg * v
        else:
            if parity:
                qq, kk = q, k
            else:
                om = m.fn.projection_matrix
                def phi(t, is_query):
                    ts = t * dh ** -0.25
                    U = ts @ om.T
                    h = (ts ** 2).sum(-1, keepdim=True) / 2
                    mx = U.amax(-1, keepdim=True) if is_query else U.amax(dim=(-1, -2), keepdim=True)
                    return om.shape[0] ** -0.5 * (torch.exp(U - h - mx) + 1e-4)
                qq, kk = phi(q, True), phi(k, False)
            ctx = kk.transpose(-1, -2) @ v
            o = (qq @ ctx) / (qq @ kk.sum(-2, keepdim=True).transpose(-1, -2))
        o = m.fn.to_out(o.transpose(1, 2).reshape(G, L, D))
        return o + qo if mech == "fastformer" else o

    def forward(self, video):
        c = self.cfg
        B, F, C, Hh, Ww = video.shape
        p, P, D = c["patch_size"], self.P, c["dim"]
        patches = video.reshape(B, F, C, self.hp, p, self.wp, p).permute(0, 1, 3, 5, 4, 6, 2).reshape(B, F * P, p * p * C)
        x = torch.cat([self.cls_token.expand(B, 1, D), self.project_in(patches)], dim=1)
        tt = it = None
        if c["rotary_emb"]:
            tt, it = _lucid_tables(F, self.hp, self.wp, c["dim_head"])
        else:
            x = x + self.pos_emb.weight[: x.shape[1]]
        parity = c["parity"]
        N = F * P
        r = torch.arange(N)
        # Token r (frame-major) -> (time group, index in it) and (space group, index in it).
        tg, ti = (r // F, r % F) if parity else (r % P, r // P)
        sg, si = (r % F, r // F) if parity else (r // P, r % P)
        for b in self.blocks:
            if c["attn_type"] == "joint":
                y = self._attend(b.attn_s, x, None, False)
                x = y + x if not parity else y
                y = self._geglu(b, x)
                x = y + x if not parity else y
                continue
            cls0, xt = x[:, :1], x[:, 1:]
            grp = torch.empty(B, P, F, D, dtype=x.dtype)
            grp[:, tg, ti] = xt
            rt = self._attend(b.attn_t, grp.reshape(B * P, F, D), tt, False).reshape(B, P, F, D)
            out_t = b.fc_t(rt[:, tg, ti]) + xt
            sp = torch.empty(B, F, P, D, dtype=x.dtype)
            sp[:, sg, si] = out_t
            seq = torch.cat([cls0[:, None].expand(B, F, 1, D), sp], dim=2).reshape(B * F, 1 + P, D)
            rs = self._attend(b.attn_s, seq, it, True).reshape(B, F, 1 + P, D)
            cls1 = rs[:, :, 0].mean(1, keepdim=True)
            out_s = rs[:, :, 1:][:, sg, si]
            x = torch.cat([cls0 + cls1, out_t + out_s], dim=1)
            x = x + self._geglu(b, x)
        return self.to_out.fn(self.to_out.norm(x[:, 0]))

    def _geglu(self, b, x):
        h = b.mlp.fn.net[0](b.mlp.norm(x))
        a, g = h.chunk(2, dim=-1)
        return b.mlp.fn.net[3](a * torch.nn.functional.gelu(g))
