"""ADOR: action tokens + object relations, fused by cross attention, then ADNet's TCN stages.

Per clip: an action encoder over the spatial token map (1x1 projection, CLS, sinusoidal positions) and an
object-relation encoder over up to 36 RoI features (projection plus a box embedding, CLS, a box-geometry attention
term between objects, none for the CLS token). The box embedding is our addition to the thesis: with it the
attention values, not only the weights, carry where objects are, and relation anomalies are learnt from far less
data. The second half of each encoder's layers also cross-attends to the other encoder. The clip feature
concat(CLS_action, CLS_object) then goes through TCN stages over time (as in ADNet).
Padded clips are masked in the TCN; missing objects are masked as attention keys.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .adnet import SingleStage, layers_for_window


def sinusoidal_positions(n: int, dim: int) -> torch.Tensor:
    pos = torch.arange(n, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    out = torch.zeros(n, dim)
    out[:, 0::2] = torch.sin(pos * freq)
    out[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return out


def relative_geometry(boxes: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """boxes [..., M, 4] (x1, y1, x2, y2) -> [..., M, M, 4]:
    log(|dx|/w_i), log(|dy|/h_i), log(w_j/w_i), log(h_j/h_i)."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    w, h = (x2 - x1).clamp(min=eps), (y2 - y1).clamp(min=eps)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    dx = torch.log(((cx[..., :, None] - cx[..., None, :]).abs() / w[..., :, None]).clamp(min=eps))
    dy = torch.log(((cy[..., :, None] - cy[..., None, :]).abs() / h[..., :, None]).clamp(min=eps))
    dw = torch.log(w[..., None, :] / w[..., :, None])
    dh = torch.log(h[..., None, :] / h[..., :, None])
    return torch.stack([dx, dy, dw, dh], dim=-1)


class GeometryBias(nn.Module):
    """Relative geometry -> embedding -> one non-negative weight per head, added to attention logits as log(w)."""

    def __init__(self, heads: int, hidden: int = 64):
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, heads))

    def forward(self, boxes: torch.Tensor) -> torch.Tensor:
        """boxes [N, M, 4] -> bias [N, heads, M+1, M+1] with zeros on the CLS row and column."""
        weight = F.relu(self.embed(relative_geometry(boxes)))  # [N, M, M, H]
        bias = torch.log(weight.clamp(min=1e-6)).permute(0, 3, 1, 2)
        return F.pad(bias, (1, 0, 1, 0))  # CLS (index 0) gets no geometry term


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.out = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, x, context, key_valid, bias=None):
        n, lq, d = x.shape
        split = lambda t: t.view(n, t.shape[1], self.heads, d // self.heads).transpose(1, 2)  # noqa: E731
        logits_mask = torch.zeros(n, 1, 1, context.shape[1], device=x.device, dtype=x.dtype)
        logits_mask = logits_mask.masked_fill(~key_valid[:, None, None, :], float("-inf"))
        if bias is not None:
            logits_mask = logits_mask + bias
        out = F.scaled_dot_product_attention(
            split(self.q(x)), split(self.k(context)), split(self.v(context)), attn_mask=logits_mask
        )
        return self.out(out.transpose(1, 2).reshape(n, lq, d))


class EncoderLayer(nn.Module):
    """Self attention (+ optional cross attention to the other encoder) + feed-forward, pre-norm residuals."""

    def __init__(self, dim: int, heads: int, cross: bool):
        super().__init__()
        self.norm1, self.self_attn = nn.LayerNorm(dim), Attention(dim, heads)
        self.cross = cross
        if cross:
            self.norm2, self.cross_attn = nn.LayerNorm(dim), Attention(dim, heads)
        self.norm3 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, dim * 2), nn.GELU(), nn.Linear(dim * 2, dim))

    def forward(self, x, valid, other=None, other_valid=None, bias=None):
        h = self.norm1(x)
        x = x + self.self_attn(h, h, valid, bias)
        if self.cross:
            x = x + self.cross_attn(self.norm2(x), other, other_valid)
        return x + self.ffn(self.norm3(x))


class ADOR(nn.Module):
    """forward(tokens [B,T,Na,Ca], objects [B,T,M,Do], boxes [B,T,M,4], object_mask [B,T,M], mask [B,T])
    -> stage scores [S, B, T]."""

    input_names = ("tokens", "objects", "boxes", "object_mask")

    def __init__(
        self,
        token_dim: int,
        object_dim: int,
        dim: int = 512,
        heads: int = 8,
        depth: int = 4,
        stages: int = 6,
        layers: int = 7,
        hidden: int = 64,
        max_tokens: int = 256,
    ):
        super().__init__()
        self.config = dict(
            token_dim=token_dim,
            object_dim=object_dim,
            dim=dim,
            heads=heads,
            depth=depth,
            stages=stages,
            layers=layers,
            hidden=hidden,
            max_tokens=max_tokens,
        )
        self.token_proj = nn.Linear(token_dim, dim)  # a 1x1 conv over the token map
        self.object_proj = nn.Linear(object_dim, dim)
        self.box_proj = nn.Linear(4, dim)  # where each object is, so values (not only weights) carry geometry
        self.cls_action = nn.Parameter(torch.zeros(1, 1, dim))
        self.cls_object = nn.Parameter(torch.zeros(1, 1, dim))
        self.register_buffer("positions", sinusoidal_positions(max_tokens + 1, dim), persistent=False)
        self.geometry = GeometryBias(heads)
        half = depth // 2
        self.action_layers = nn.ModuleList(EncoderLayer(dim, heads, cross=i >= half) for i in range(depth))
        self.object_layers = nn.ModuleList(EncoderLayer(dim, heads, cross=i >= half) for i in range(depth))
        self.stage1 = SingleStage(layers, hidden, 2 * dim)
        self.stages = nn.ModuleList(SingleStage(layers, hidden, 1) for _ in range(stages - 1))

    @classmethod
    def config_for(cls, shapes: dict[str, tuple[int, ...]], window: int) -> dict:
        """Token and object widths from tokens [T, Na, Ca] and objects [T, M, Do]; TCN layers from the window."""
        return {
            "token_dim": shapes["tokens"][-1],
            "object_dim": shapes["objects"][-1],
            "layers": layers_for_window(window),
            "max_tokens": max(256, shapes["tokens"][1]),
        }

    def clip_features(self, tokens, objects, boxes, object_mask) -> torch.Tensor:
        """[N, Na, Ca], [N, M, Do], [N, M, 4], [N, M] -> [N, 2*dim]."""
        n = tokens.shape[0]
        a = torch.cat([self.cls_action.expand(n, -1, -1), self.token_proj(tokens)], 1)
        positions: torch.Tensor = self.positions  # type: ignore[assignment]
        a = a + positions[: a.shape[1]]
        o = torch.cat([self.cls_object.expand(n, -1, -1), self.object_proj(objects) + self.box_proj(boxes)], 1)
        ones = torch.ones(n, 1, dtype=torch.bool, device=tokens.device)
        a_valid = torch.ones(n, a.shape[1], dtype=torch.bool, device=tokens.device)
        o_valid = torch.cat([ones, object_mask.bool()], 1)
        bias = self.geometry(boxes)
        for a_layer, o_layer in zip(self.action_layers, self.object_layers):
            a, o = a_layer(a, a_valid, o, o_valid), o_layer(o, o_valid, a, a_valid, bias)
        return torch.cat([a[:, 0], o[:, 0]], dim=-1)

    def forward(self, tokens, objects, boxes, object_mask, mask) -> torch.Tensor:
        b, t = mask.shape
        flat = lambda x: x.reshape(b * t, *x.shape[2:])  # noqa: E731
        feats = self.clip_features(flat(tokens).float(), flat(objects), flat(boxes), flat(object_mask))
        m = mask.to(feats.dtype).unsqueeze(1)
        out = self.stage1(feats.view(b, t, -1).transpose(1, 2) * m, m)
        outputs = [out]
        for stage in self.stages:
            out = stage(out, m)
            outputs.append(out)
        return torch.stack(outputs).squeeze(2)
