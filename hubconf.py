"""torch.hub entry points: ``torch.hub.load("<this repository>", "rls", source="local")`` (or ``"owner/repo"`` from
GitHub) returns ``rls_lightning.RLS``, loaded as ``RLS.from_pretrained`` loads it:

    model = torch.hub.load(repo_dir, "rls", source="local")                  # the embedded demo model
    model = torch.hub.load(repo_dir, "rls", "ffhq-1024", source="local")     # a registry generator and its flow
    results = model.super_resolve(images, preset="rls+", seed=0)
"""
dependencies = ["torch", "torchvision", "lightning", "nflows", "numpy", "PIL", "scipy", "facenet_pytorch"]


def rls(name=None, **kwargs):
    """An ``RLS`` model: ``name`` a registry generator (``ffhq-1024``) or a generator file, None for the demo
    model; keyword arguments as ``RLS.from_pretrained`` (``flow=``, ``device=``, ``precision=``, ...)."""
    from rls_lightning.api import RLS

    return RLS.from_pretrained(name, **kwargs)
