import torch

from tokbench.tokens import Tokens, gather_tokens


def test_gather_tokens_matches_indexing():
    x = torch.arange(2 * 5 * 3).reshape(2, 5, 3)
    idx = torch.tensor([[4, 0], [1, 2]])
    out = gather_tokens(x, idx)
    assert torch.equal(out[0], x[0, [4, 0]]) and torch.equal(out[1], x[1, [1, 2]])


def test_keep_protects_prefix_and_carries_size_mask_index():
    B, N, D = 2, 5, 4  # one CLS + 4 patch tokens
    x = torch.arange(B * N * D, dtype=torch.float).reshape(B, N, D)
    t = Tokens(
        x=x, index=torch.tensor([[10, 11, 12, 13], [20, 21, 22, 23]]), n_prefix=1,
        size=torch.arange(B * N, dtype=torch.float).reshape(B, N, 1),
        mask=torch.tensor([[True, True, False, True, True], [True] * 5]),
    )
    kept = t.keep(torch.tensor([[1, 3], [0, 2]]))
    assert kept.x.shape == (2, 3, 4) and kept.n_prefix == 1 and kept.n_patches == 2
    assert torch.equal(kept.x[:, 0], x[:, 0])  # CLS untouched
    assert torch.equal(kept.x[0, 1:], x[0, [2, 4]]) and torch.equal(kept.x[1, 1:], x[1, [1, 3]])
    assert kept.index.tolist() == [[11, 13], [20, 22]]
    assert kept.size[..., 0].tolist() == [[0, 2, 4], [5, 6, 8]]
    assert kept.mask.tolist() == [[True, False, True], [True, True, True]]
