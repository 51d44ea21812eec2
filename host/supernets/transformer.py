"""`transformer`: a HAT-style encoder-decoder super-network (Wang et al., "HAT", ACL 2020), exported at a fixed length.

The space is HAT's WMT'14 En-De one: encoder/decoder embedding dim 512/640, per-layer FFN hidden dim 1024/2048/3072,
per-layer heads 4/8 (q/k/v dim fixed at 512, as in HAT), 6 encoder layers, 1-6 decoder layers, and HAT's arbitrary
encoder-decoder attention: each decoder layer attends to the concatenated outputs of the last 1, 2 or 3 encoder layers.
Every elastic dimension takes the *first* rows/columns of the full tensors, so extraction is "copy each parameter's
leading slice" (``slice_copy``). Post-norm layers, learned positions, one embedding shared by source, target and the
output projection. Weights: a seeded random initialisation, or ``--weights`` with a state dict of this module.

The exported graph takes ``src_tokens`` and ``prev_output_tokens`` (int64, 1 x ``seq_len``) and returns the logits of
one teacher-forced decoder pass. Token ids are clamped into the vocabulary inside the graph, so an agent feeding random
integers measures a valid run instead of failing in Gather.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from fleetnas.host.errors import UsageError
from fleetnas.host.search.space import ActiveIf, Choice, SearchSpace
from fleetnas.host.supernets.base import SuperNet


@dataclass(frozen=True)
class HatDims:
    vocab: int = 32000
    seq_len: int = 32              # export length of source and target
    max_positions: int = 256
    qkv_dim: int = 512
    embed: Tuple[int, ...] = (512, 640)
    ffn: Tuple[int, ...] = (1024, 2048, 3072)
    heads: Tuple[int, ...] = (4, 8)
    enc_layers: int = 6
    dec_layers: Tuple[int, ...] = (1, 2, 3, 4, 5, 6)
    arbitrary: Tuple[int, ...] = (1, 2, 3)


class ElasticLinear(nn.Linear):
    def forward(self, x: torch.Tensor, out_features: Optional[int] = None) -> torch.Tensor:
        out_features = out_features or self.out_features
        bias = self.bias[:out_features] if self.bias is not None else None
        return F.linear(x, self.weight[:out_features, :x.shape[-1]], bias)


class ElasticLayerNorm(nn.LayerNorm):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = x.shape[-1]
        return F.layer_norm(x, (d,), self.weight[:d], self.bias[:d], self.eps)


class Attention(nn.Module):
    def __init__(self, embed: int, kv_embed: int, qkv_dim: int) -> None:
        super().__init__()
        self.q_proj, self.k_proj = ElasticLinear(embed, qkv_dim), ElasticLinear(kv_embed, qkv_dim)
        self.v_proj, self.out_proj = ElasticLinear(kv_embed, qkv_dim), ElasticLinear(qkv_dim, embed)

    def forward(self, q_in: torch.Tensor, kv_in: torch.Tensor, heads: int,
                mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        b, lq, d = q_in.shape
        lk, qkv = kv_in.shape[1], self.q_proj.out_features
        q = self.q_proj(q_in).view(b, lq, heads, qkv // heads).transpose(1, 2)
        k = self.k_proj(kv_in).view(b, lk, heads, qkv // heads).transpose(1, 2)
        v = self.v_proj(kv_in).view(b, lk, heads, qkv // heads).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(qkv // heads)
        if mask is not None:
            scores = scores + mask
        out = torch.matmul(F.softmax(scores, dim=-1), v).transpose(1, 2).reshape(b, lq, qkv)
        return self.out_proj(out, d)

    def extra_macs(self, args: Tuple[Any, ...], output: torch.Tensor) -> int:
        """QK^T and AV: 2 * Lq * Lk * qkv_dim per batch item (counting.py adds the projections)."""
        q_in, kv_in = args[0], args[1]
        return 2 * q_in.shape[0] * q_in.shape[1] * kv_in.shape[1] * self.q_proj.out_features


class FFN(nn.Module):
    def __init__(self, embed: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = ElasticLinear(embed, hidden), ElasticLinear(hidden, embed)

    def forward(self, x: torch.Tensor, hidden: int) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(x, hidden)), x.shape[-1])


class EncoderLayer(nn.Module):
    def __init__(self, embed: int, ffn: int, qkv_dim: int) -> None:
        super().__init__()
        self.self_attn, self.ln1 = Attention(embed, embed, qkv_dim), ElasticLayerNorm(embed)
        self.ffn, self.ln2 = FFN(embed, ffn), ElasticLayerNorm(embed)

    def forward(self, x: torch.Tensor, ffn: int, heads: int) -> torch.Tensor:
        x = self.ln1(x + self.self_attn(x, x, heads))
        return self.ln2(x + self.ffn(x, ffn))


class DecoderLayer(nn.Module):
    def __init__(self, embed: int, enc_embed: int, ffn: int, qkv_dim: int) -> None:
        super().__init__()
        self.self_attn, self.ln1 = Attention(embed, embed, qkv_dim), ElasticLayerNorm(embed)
        self.cross_attn, self.ln2 = Attention(embed, enc_embed, qkv_dim), ElasticLayerNorm(embed)
        self.ffn, self.ln3 = FFN(embed, ffn), ElasticLayerNorm(embed)

    def forward(self, y: torch.Tensor, memory: torch.Tensor, ffn: int, heads: int, mask: torch.Tensor) -> torch.Tensor:
        y = self.ln1(y + self.self_attn(y, y, heads, mask))
        y = self.ln2(y + self.cross_attn(y, memory, heads))
        return self.ln3(y + self.ffn(y, ffn))


def arch_of(config: Dict[str, Any], dims: HatDims) -> Dict[str, Any]:
    n = config["dec_layers"]
    return {"enc_embed": config["enc_embed"], "dec_embed": config["dec_embed"], "dec_layers": n,
            "enc_ffn": [config[f"enc_ffn_{i}"] for i in range(dims.enc_layers)],
            "enc_heads": [config[f"enc_heads_{i}"] for i in range(dims.enc_layers)],
            "dec_ffn": [config[f"dec_ffn_{i}"] for i in range(n)],
            "dec_heads": [config[f"dec_heads_{i}"] for i in range(n)],
            "dec_arbitrary": [config[f"dec_arbitrary_{i}"] for i in range(n)]}


def max_arch(dims: HatDims) -> Dict[str, Any]:
    config = {p.name: max(p.options) for p in hat_space(dims).params}
    return arch_of(config, dims)


class HatTransformer(nn.Module):
    """Built for one architecture (``arch``); ``forward(..., arch=other)`` runs a smaller one on leading slices."""

    def __init__(self, dims: HatDims, arch: Dict[str, Any]) -> None:
        super().__init__()
        self.dims, self.arch = dims, arch
        embed = max(arch["enc_embed"], arch["dec_embed"])
        self.embed_tokens = nn.Embedding(dims.vocab, embed)
        self.embed_positions = nn.Embedding(dims.max_positions, embed)
        nn.init.normal_(self.embed_tokens.weight, std=embed ** -0.5)
        self.encoder = nn.ModuleList(EncoderLayer(arch["enc_embed"], f, dims.qkv_dim) for f in arch["enc_ffn"])
        self.decoder = nn.ModuleList(DecoderLayer(arch["dec_embed"], arch["enc_embed"], f, dims.qkv_dim)
                                     for f in arch["dec_ffn"])
        causal = torch.triu(torch.full((dims.max_positions, dims.max_positions), float("-inf")), diagonal=1)
        self.register_buffer("causal_mask", causal, persistent=False)

    def _embed(self, tokens: torch.Tensor, d: int) -> torch.Tensor:
        tokens = tokens.clamp(0, self.dims.vocab - 1)
        x = F.embedding(tokens, self.embed_tokens.weight[:, :d]) * math.sqrt(d)
        return x + self.embed_positions.weight[:tokens.shape[1], :d]

    def forward(self, src_tokens: torch.Tensor, prev_output_tokens: torch.Tensor,
                arch: Optional[Dict[str, Any]] = None) -> torch.Tensor:
        arch = arch or self.arch
        x = self._embed(src_tokens, arch["enc_embed"])
        outputs: List[torch.Tensor] = []
        for layer, ffn, heads in zip(self.encoder, arch["enc_ffn"], arch["enc_heads"]):
            x = layer(x, ffn, heads)
            outputs.append(x)
        y = self._embed(prev_output_tokens, arch["dec_embed"])
        length = y.shape[1]
        mask = self.causal_mask[:length, :length]
        for i in range(arch["dec_layers"]):
            memory = torch.cat(outputs[-arch["dec_arbitrary"][i]:], dim=1)
            y = self.decoder[i](y, memory, arch["dec_ffn"][i], arch["dec_heads"][i], mask)
        return F.linear(y, self.embed_tokens.weight[:, :arch["dec_embed"]])

    def extra_macs(self, args: Tuple[Any, ...], output: torch.Tensor) -> int:
        """The output projection onto the (shared) embedding: L * vocab * dec_embed."""
        return int(output.numel() * self.arch["dec_embed"])


def slice_copy(dst: nn.Module, src: nn.Module) -> None:
    """Copy into every tensor of ``dst`` the leading slice of the same-named tensor of ``src``."""
    source = dict(src.named_parameters())
    source.update(dict(src.named_buffers()))
    with torch.no_grad():
        for name, tensor in list(dst.named_parameters()) + list(dst.named_buffers()):
            tensor.copy_(source[name][tuple(slice(0, n) for n in tensor.shape)])


def hat_space(dims: HatDims) -> SearchSpace:
    params: List[Any] = [Choice("enc_embed", dims.embed), Choice("dec_embed", dims.embed),
                         Choice("dec_layers", dims.dec_layers)]
    for i in range(dims.enc_layers):
        params += [Choice(f"enc_ffn_{i}", dims.ffn), Choice(f"enc_heads_{i}", dims.heads)]
    for i in range(max(dims.dec_layers)):
        params += [Choice(f"dec_ffn_{i}", dims.ffn), Choice(f"dec_heads_{i}", dims.heads),
                   Choice(f"dec_arbitrary_{i}", dims.arbitrary)]
    # Decoder layer i (and its genes) exists only when dec_layers > i.
    conditions = [ActiveIf(f"{gene}_{i}", "dec_layers", i + 1) for i in range(max(dims.dec_layers))
                  for gene in ("dec_ffn", "dec_heads", "dec_arbitrary")]
    return SearchSpace(params, conditions=conditions)


class TransformerSuperNet(SuperNet):
    name = "transformer"
    input_names = ("src_tokens", "prev_output_tokens")
    output_names = ("logits",)

    def __init__(self, weights: Optional[str] = None, dims: HatDims = HatDims()) -> None:
        super().__init__(weights)
        self.dims = dims
        self.space = hat_space(dims)
        self._net: Optional[HatTransformer] = None

    @property
    def net(self) -> HatTransformer:
        """Built on first use: listing spaces should not allocate 90 M parameters."""
        if self._net is None:
            torch.manual_seed(0)
            net = HatTransformer(self.dims, max_arch(self.dims)).eval()
            if self.weights_path is not None:
                from fleetnas.host.supernets.ofa_layers import load_checkpoint, load_strict

                load_strict(net, load_checkpoint(self.weights_path), "the HAT-style transformer")
            self._net = net
        return self._net

    def _default_weights_id(self) -> str:
        import hashlib

        return "random-init-seed0:dims-" + hashlib.sha256(repr(self.dims).encode()).hexdigest()[:12]

    def _extract(self, config: Dict[str, Any]) -> HatTransformer:
        sub = HatTransformer(self.dims, arch_of(config, self.dims))
        slice_copy(sub, self.net)
        return sub

    def _example_input(self, config: Dict[str, Any]) -> Tuple[torch.Tensor, torch.Tensor]:
        gen = torch.Generator().manual_seed(0)
        shape = (1, self.dims.seq_len)
        return (torch.randint(0, self.dims.vocab, shape, generator=gen),
                torch.randint(0, self.dims.vocab, shape, generator=gen))

    def evaluator(self, data: Any = None):
        if data is None or not callable(data):
            raise UsageError("the transformer's accuracy needs a callable returning (src_tokens, prev_output_tokens, "
                             "target) batches; it reports teacher-forced next-token accuracy")
        return TokenAccuracy(self, data)


class TokenAccuracy:
    """Teacher-forced next-token accuracy over ``data() -> iterable of (src, prev_output, target)`` int64 batches."""

    def __init__(self, supernet: TransformerSuperNet, data: Any) -> None:
        self.supernet, self.data = supernet, data
        self._cache: Dict[str, float] = {}

    def evaluate(self, config: Dict[str, Any]) -> float:
        key = self.supernet.key(config)
        if key not in self._cache:
            module = self.supernet.extract(config)
            correct = total = 0
            with torch.no_grad():
                for src, prev, target in self.data():
                    correct += int((module(src, prev).argmax(-1) == target).sum())
                    total += int(target.numel())
            self._cache[key] = correct / max(total, 1)
        return self._cache[key]
