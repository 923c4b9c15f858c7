import json
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image
from support.inversion_fixtures import quiet_trainer

from rls_lightning.flow.sampling import latent_statistics
from rls_lightning.stylegan import GeneratorConfig, load_generator
from rls_lightning.stylegan.discriminator import Discriminator, minibatch_stddev
from rls_lightning.stylegan.image_folder import list_images, load_images, split_names
from rls_lightning.stylegan.training import StyleGAN2Training, generator_for_export

TINY = GeneratorConfig(img_resolution=8, z_dim=16, w_dim=16, mapping_layers=2, channel_base=64, channel_max=16)
COLOUR = np.array([200, 60, 30], dtype=np.uint8)


def colour_images(n: int, seed: int = 0) -> torch.Tensor:
    """Near-constant orange images with a little noise, as uint8 [N, 3, 8, 8]."""
    rng = np.random.default_rng(seed)
    images = np.clip(COLOUR[None, :, None, None] + rng.normal(0, 8, (n, 3, 8, 8)), 0, 255).astype(np.uint8)
    return torch.from_numpy(images)


def test_discriminator_shapes_and_minibatch_stddev():
    D = Discriminator(GeneratorConfig(img_resolution=32, channel_base=256, channel_max=32))
    assert D(torch.randn(6, 3, 32, 32)).shape == (6,)
    x = torch.randn(8, 3, 4, 4)
    out = minibatch_stddev(x, group_size=4)
    assert out.shape == (8, 4, 4, 4)
    for n in range(8):  # sample n belongs to group position n // 2 (groups interleave: reshape(4, -1, ...))
        members = x[n % 2::2]
        expected = members.std(dim=0, unbiased=False).mean()
        assert out[n, 3, 0, 0].item() == pytest.approx(expected.item(), rel=1e-4)


def test_split_is_deterministic_and_disjoint():
    names = [f"{i:05d}.jpg" for i in range(100)]
    train, held = split_names(names, 10, seed=3)
    assert len(held) == 10 and not set(train) & set(held) and sorted(train + held) == names
    assert (train, held) == split_names(names, 10, seed=3)
    assert held != split_names(names, 10, seed=4)[1]


def test_images_load_from_a_folder_and_resize(tmp_path):
    Image.fromarray(np.full((16, 16, 3), 100, np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.full((8, 8), 50, np.uint8)).save(tmp_path / "b.png")
    (tmp_path / "c.txt").write_text("ignored")
    names = list_images(tmp_path)
    assert names == ["a.png", "b.png"]
    images = load_images(tmp_path, names, 8, progress=False)
    assert images.shape == (2, 3, 8, 8) and images.dtype == torch.uint8
    assert images[0].float().mean().item() == pytest.approx(100, abs=1) and int(images[1].max()) == 50


def test_a_training_image_too_large_to_hold_is_refused_before_it_is_read(tmp_path, monkeypatch):
    """A zip member that inflates past the cap (declared size, checked before reading) and a link to an endless
    device are one-line errors naming the image, not a process killed for memory or a read that never ends."""
    from rls_lightning.stylegan import image_folder

    monkeypatch.setattr(image_folder, "MAX_IMAGE_BYTES", 1 << 20)
    with zipfile.ZipFile(tmp_path / "set.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb.png", bytes(2 << 20))  # 2 MiB of zeros, a few KB packed
    assert (tmp_path / "set.zip").stat().st_size < 20_000
    with pytest.raises(ValueError, match=r"set\.zip/bomb\.png: unreadable image \(2097152 bytes, more than"):
        load_images(tmp_path / "set.zip", ["bomb.png"], 8, progress=False)
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "endless.png").symlink_to("/dev/zero")
    with pytest.raises(ValueError, match=r"endless\.png: unreadable image \(not a regular file\)"):
        load_images(tmp_path / "folder", ["endless.png"], 8, progress=False)


def test_ema_follows_the_stylegan2_formula():
    module = StyleGAN2Training(TINY, colour_images(8), batch_size=4, ema_kimg=0.01, ema_rampup=None)
    with torch.no_grad():
        for p in module.G.parameters():
            p.add_(1.0)
    before = [p.clone() for p in module.G_ema.parameters()]
    module.update_ema(4)
    beta = 0.5 ** (4 / 10)
    for b, p_ema, p in zip(before, module.G_ema.parameters(), module.G.parameters()):
        torch.testing.assert_close(p_ema, beta * b + (1 - beta) * p)


@pytest.mark.slow
def test_training_learns_the_colour_of_the_data_and_exports(tmp_path):
    torch.manual_seed(0)
    module = StyleGAN2Training(TINY, colour_images(256), batch_size=16, lr=0.01, ema_kimg=0.05, pl_weight=0.0)
    z = torch.randn(64, TINY.z_dim)

    def mean_colour(G):
        with torch.no_grad():
            images = G.synthesis(G.mapping(z)[:, None].expand(-1, G.num_ws, -1))
        return ((images.clamp(-1, 1) + 1) * 127.5).mean(dim=(0, 2, 3)).numpy()

    start_error = np.abs(mean_colour(module.G_ema) - COLOUR).mean()
    quiet_trainer(max_steps=2 * 120, max_epochs=-1).fit(module)
    assert int(module.iteration) == 120 and float(module.images_seen) == 120 * 16
    end_error = np.abs(mean_colour(module.G_ema) - COLOUR).mean()
    assert end_error < 0.5 * start_error, (start_error, end_error)

    G = generator_for_export(module, w_avg_samples=2000)
    mean, _ = latent_statistics(G.mapping, G.z_dim, 2000, 0, "cpu")
    torch.testing.assert_close(G.w_avg, mean)
    from rls_lightning.stylegan import save_generator
    save_generator(G, tmp_path / "g.pt")
    loaded = load_generator(tmp_path / "g.pt")
    ws = torch.randn(2, G.num_ws, G.w_dim)
    with torch.no_grad():
        torch.testing.assert_close(loaded.synthesis(ws), module.G_ema.synthesis(ws), atol=1e-5, rtol=0)


def test_cli_trains_resumes_and_keeps_the_held_out_split(tmp_path):
    from rls_lightning.cli.train_stylegan import main

    data = tmp_path / "data"
    data.mkdir()
    for i, image in enumerate(colour_images(40)):
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(data / f"{i:03d}.png")
    # no --out: the generator goes into the run folder, never over the shipped demo generator
    common = ["--data", str(data), "--run-dir", str(tmp_path / "run"),
              "--resolution", "8", "--w-dim", "16", "--mapping-layers", "2", "--channel-base", "64",
              "--channel-max", "16", "--batch-size", "8", "--holdout", "8", "--snapshot-every", "2",
              "--accelerator", "cpu", "--workers-progress", "false"]
    assert main([*common, "--kimg", "0.032"]) == 0  # 4 batches of 8
    first = torch.load(tmp_path / "run" / "generator.pt", weights_only=True)["extra"]
    assert (first["steps"], first["kimg"]) == (4, 0.032)
    # resumed with another snapshot interval (Lightning then does not recognise its checkpoint callback's state)
    assert main([*common, "--kimg", "0.064", "--resume", "last", "--snapshot-every", "1"]) == 0
    second = torch.load(tmp_path / "run" / "generator.pt", weights_only=True)["extra"]
    assert (second["steps"], second["kimg"]) == (8, 0.064)  # continued, not restarted
    checkpoints = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert checkpoints == ["last.ckpt"]  # overwritten by the resumed run, so a third run continues from step 8
    assert torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 16
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    assert len(split["held_out"]) == 8 and (tmp_path / "run" / "samples.png").is_file()
    assert load_generator(tmp_path / "run" / "generator.pt").img_resolution == 8


def test_cli_sigterm_stops_at_a_step_and_resumes(tmp_path, capsys):
    """SIGTERM (a scheduler's stop) during training: exit 143 and one 'interrupted' line naming the saved step;
    --resume last continues from it. Run in-process: the signal comes from a thread once a checkpoint exists."""
    import os
    import signal
    import threading
    import time

    from rls_lightning.cli.train_stylegan import main

    data = tmp_path / "data"
    data.mkdir()
    for i, image in enumerate(colour_images(12)):
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(data / f"{i:03d}.png")
    common = ["--data", str(data), "--out", str(tmp_path / "G.pt"), "--run-dir", str(tmp_path / "run"),
              "--resolution", "8", "--w-dim", "16", "--mapping-layers", "2", "--channel-base", "64",
              "--channel-max", "16", "--batch-size", "4", "--holdout", "4", "--snapshot-every", "2",
              "--accelerator", "cpu", "--precision", "32-true", "--workers-progress", "false"]
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"

    def terminate_once_saved() -> None:
        deadline = time.monotonic() + 60
        while not last.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGTERM)

    def unhandled(signum, frame):  # if the command left SIGTERM to the default, pytest itself would die
        raise AssertionError("SIGTERM reached the test, not the command")

    previous = signal.signal(signal.SIGTERM, unhandled)
    try:
        threading.Thread(target=terminate_once_saved, daemon=True).start()
        assert main([*common, "--kimg", "1000"]) == 143
    finally:
        signal.signal(signal.SIGTERM, previous)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("interrupted")]
    step = torch.load(last, weights_only=False)["global_step"] // 2
    assert len(lines) == 1 and f"SIGTERM at step {step}, saved" in lines[0], lines
    assert main([*common, "--kimg", str((step + 2) * 4 / 1000), "--resume", "last"]) == 0
    assert torch.load(tmp_path / "G.pt", weights_only=True)["extra"]["steps"] == step + 2
