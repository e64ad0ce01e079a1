"""What ``tokbench ls`` lists: one row (a dict) per registered method, backbone, dataset or
evaluation protocol, with the brief columns of each kind."""

from __future__ import annotations

__all__ = ["rows", "BRIEF", "KINDS"]

KINDS = ("methods", "backbones", "datasets", "protocols")

#: The columns of ``tokbench ls KIND`` without ``-v``.
BRIEF = {"methods": ("name", "aliases", "summary"),
         "backbones": ("name", "tokens", "embed_dim", "depth", "num_heads", "input"),
         "datasets": ("name", "kind", "mirrors", "task", "classes", "eval_split", "views", "protocol"),
         "protocols": ("name", "views", "sampling", "stride", "spatial", "aggregation")}


def rows(kind: str, *, brief: bool = False) -> list[dict]:
    """Every registered entry of ``kind`` (one of :data:`KINDS`), all columns or the brief ones."""
    out = {"methods": _methods, "backbones": _backbones, "datasets": _datasets, "protocols": _protocols}[kind]()
    return [{k: r[k] for k in BRIEF[kind]} for r in out] if brief else out


def _methods() -> list[dict]:
    from tokbench.methods import METHODS
    from tokbench.plugins import method_origin

    out = []
    for name in METHODS.names():
        cls = METHODS.get(name)
        doc = (cls.__doc__ or "").strip().splitlines()
        defaults = cls(p_ratio=1.0).params()
        out.append({
            "name": name, "aliases": ",".join(METHODS.aliases_of(name)),
            "summary": doc[0] if doc else "", "options": ", ".join(f"{k}={v!r}" for k, v in defaults.items()),
            "uses_p_ratio": cls.uses_p_ratio, "privileged": cls.privileged, "embeds": cls.embeds,
            "origin": method_origin(cls),
        })
    return out


def _backbones() -> list[dict]:
    from tokbench.backbones import BACKBONES

    out = []
    for name in BACKBONES.names():
        c = BACKBONES.get(name)
        out.append({
            "name": name, "tokens": c.num_patches, "embed_dim": c.embed_dim, "depth": c.depth,
            "num_heads": c.num_heads, "input": "x".join(map(str, c.input_shape[1:])),
            "tubelet": f"{c.tubelet_size}x{c.patch_size}x{c.patch_size}", "cls_token": c.class_token,
            "num_classes": c.num_classes,
        })
    return out


def _datasets() -> list[dict]:
    from tokbench.data import DATASETS

    out = []
    for name in DATASETS.names():
        c = DATASETS.get(name).card
        classes = f"{c.num_verbs}x{c.num_nouns}" if c.task == "verb_noun" else str(c.num_classes)
        out.append({
            "name": name, "kind": c.kind, "mirrors": c.mirrors, "task": c.task, "classes": classes,
            "metric": c.metric, "eval_split": c.eval_split, "views": f"{c.views[0]}x{c.views[1]}",
            "protocol": c.protocol, "protocol_source": c.extra.get("protocol_source", "tokbench's synthetic suite"),
            "splits": ",".join(c.splits), "decides": c.decides, "stresses": c.stresses,
            "files": ", ".join(c.files), "notes": c.notes,
            "class_names": _class_names(c),
        })
    return out


def _protocols() -> list[dict]:
    from tokbench.data.protocols import PROTOCOLS

    out = []
    for name in PROTOCOLS.names():
        p = PROTOCOLS.get(name)
        out.append({
            "name": name, "views": f"{p.temporal_clips}x{p.spatial_crops}", "sampling": p.sampling,
            "stride": "-" if p.stride is None else p.stride, "spatial": p.spatial, "aggregation": p.aggregation,
            "frames": p.frames, "size": p.size, "source": p.source,
        })
    return out


def _class_names(card) -> str:
    if card.task == "verb_noun" and "verbs" in card.extra:
        return f"verbs: {', '.join(card.extra['verbs'])}; nouns: {', '.join(card.extra['nouns'])}"
    names = card.extra.get("classes")
    return "; ".join(names) if names else "(from the annotation files)"
