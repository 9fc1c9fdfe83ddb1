"""A tiny ViT with the attributes timm's VisionTransformer declares (``num_prefix_tokens``,
``patch_embed.patch_size``, a strict ``img_size``), so token layouts are tested without timm."""

from __future__ import annotations

import torch
from torch import nn

SIZE, PATCH, DIM, HEADS = 32, 8, 24, 3  # a 4x4 patch grid


class PatchEmbed(nn.Module):
    def __init__(self):
        super().__init__()
        self.patch_size, self.img_size, self.strict_img_size = (PATCH, PATCH), (SIZE, SIZE), True
        self.proj = nn.Conv2d(3, DIM, PATCH, PATCH)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.num_heads = HEADS
        self.qkv, self.proj = nn.Linear(DIM, 3 * DIM), nn.Linear(DIM, DIM)
        self.attn_drop = nn.Identity()  # sees the attention weights, as timm's unfused path does

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, HEADS, d // HEADS).permute(2, 0, 3, 1, 4)
        w = self.attn_drop((q @ k.transpose(-1, -2) * (d // HEADS) ** -0.5).softmax(-1))
        return self.proj((w @ v).transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(DIM, 4 * DIM), nn.GELU(), nn.Linear(4 * DIM, DIM)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1, self.attn, self.norm2, self.mlp = nn.LayerNorm(DIM), Attention(), nn.LayerNorm(DIM), Mlp()

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TinyViT(nn.Module):
    num_prefix_tokens = 2  # class and distillation tokens, as DeiT's distilled models have

    def __init__(self):
        super().__init__()
        self.patch_embed = PatchEmbed()
        self.prefix = nn.Parameter(torch.randn(1, 2, DIM) * 0.5)
        self.pos = nn.Parameter(torch.randn(1, 2 + (SIZE // PATCH) ** 2, DIM) * 0.5)
        self.blocks = nn.Sequential(Block(), Block())
        self.head = nn.Linear(DIM, 10)

    def forward(self, x):
        t = self.patch_embed(x)
        t = torch.cat([self.prefix.expand(len(t), -1, -1), t], 1) + self.pos
        return self.head(self.blocks(t)[:, 0])
