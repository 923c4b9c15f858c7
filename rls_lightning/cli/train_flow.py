"""Train the MAF latent prior p_F(w) of a StyleGAN2 generator (paper sections 2.2, 3.1, 4).

Samples w = G.mapping(z) on the fly on the training device (no data set on disk), fits the flow by maximum
likelihood, keeps the checkpoint with the best validation NLL, then writes one standalone flow file for
invert.py and a Gaussianization report (Figure 3) beside it.

    python train_flow.py                                   # the embedded demo generator, into the weights cache
    python train_flow.py --generator ffhq-1024 --devices 4 # then: invert.py --generator ffhq-1024 (no --flow)
    python train_flow.py --generator ffhq.pkl --output ffhq-flow.pt
    python train_flow.py --config flow.yaml                # any option, in YAML
    python train_flow.py --print-config > flow.yaml        # write the defaults as a starting point
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from jsonargparse import ActionConfigFile, ArgumentParser

from rls_lightning.cli.arguments import (PRINT_CONFIG, ParagraphHelpFormatter, check_generator, check_output_file,
                                         check_output_folder, parse_args)
from rls_lightning.paths import DEMO_FLOW, DEMO_GENERATOR
from rls_lightning.cli.errors import check_choice, check_float, check_int, guarded
from rls_lightning.weights.flows import cached_flow_path, describe_flow, flow_folder

if TYPE_CHECKING:  # Lightning is imported only once the options are known to be good
    from rls_lightning.cli.common import StopAtStepBoundary


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python train_flow.py", description=__doc__, default_env=False,
                       formatter_class=ParagraphHelpFormatter, print_config=PRINT_CONFIG)
    p.add_argument("--config", action=ActionConfigFile, help="YAML file with any of the options below")
    io = p.add_argument_group("files")
    io.add_argument("--generator", type=Path, default=DEMO_GENERATOR,
                    help="StyleGAN2 checkpoint (ours, rosinality .pt or NVIDIA .pkl) or a registry name such as "
                         "ffhq-1024 (downloaded once, verified; python -m rls_lightning.cli.weights list); default: "
                         "the demo model")
    io.add_argument("--output", type=Path | None, default=None,
                    help="flow file to write; default: the weights cache, under the fingerprint of the generator's "
                         "mapping network ($TORCH_HOME/hub/checkpoints/rls-flows/), where invert.py, the web page "
                         "and RLS.from_pretrained find it for this generator without --flow (python -m "
                         f"rls_lightning.cli.weights list shows it); the shipped {DEMO_FLOW} is only written when "
                         "named here")
    io.add_argument("--run-dir", type=Path, default=Path("runs/flow"),
                    help="Lightning checkpoints (best and last) and logs go here")
    io.add_argument("--resume", type=str | None, default=None,
                    help="continue an interrupted run: 'last' (RUN_DIR/checkpoints/last.ckpt) or a .ckpt path")
    model = p.add_argument_group("flow (paper sec. 4: MAF, 5 blocks, hidden size 1024 at d = 512)")
    model.add_argument("--blocks", type=int, default=5, help="MAF blocks [MADE, batch-norm, reversal]")
    model.add_argument("--hidden", type=int | None, default=None,
                       help="hidden width of each MADE; default 2 x w_dim (the paper's 1024 at d = 512)")
    model.add_argument("--made-blocks", type=int, default=2, help="residual blocks inside each MADE (nflows default)")
    model.add_argument("--batch-norm", type=bool, default=True, help="batch-norm flow layer after each MADE "
                                                                      "(official code)")
    train = p.add_argument_group("training")
    train.add_argument("--num-samples", type=int, default=5_000_000,
                       help="total mapped w seen in training, over all devices")
    train.add_argument("--batch-size", type=int, default=1024, help="w per step and device")
    train.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate, cosine-decayed to 0")
    train.add_argument("--val-samples", type=int, default=10_000, help="fixed, seeded validation set of w")
    train.add_argument("--val-every", type=int, default=500, help="validate every this many steps")
    train.add_argument("--patience", type=int, default=10,
                       help="early stopping: validations without improvement of val_nll")
    train.add_argument("--stats-samples", type=int, default=100_000,
                       help="mapped w for the standardisation and the RLS initial w (paper: mean of 100,000)")
    train.add_argument("--seed", type=int, default=0, help="root of all random streams")
    hw = p.add_argument_group("hardware (Lightning Trainer)")
    hw.add_argument("--accelerator", type=str, default="auto", help="auto, cpu, gpu, cuda or mps")
    hw.add_argument("--devices", type=int, default=1, help="devices per node; >1 uses DDP")
    hw.add_argument("--num-nodes", type=int, default=1, help="machines for multi-node DDP")
    hw.add_argument("--precision", type=str, default="auto",
                    help="'auto' = bf16-mixed on a GPU with bf16 or a CPU with native bf16 (AVX512-BF16, AMX; the "
                         "log-determinant stays float32), else 32-true")
    hw.add_argument("--logger", type=str, default="csv", help="csv or tensorboard (if installed)")
    rep = p.add_argument_group("Gaussianization report (Figure 3)")
    rep.add_argument("--report", type=bool, default=True, help="write <output stem>-report.png/.json after training")
    rep.add_argument("--report-samples", type=int, default=5000, help="fresh samples in the report (paper: 5000)")
    return p


LOGGERS = ("csv", "tensorboard")
MAX_SEED = 2**63 - 1  # the random streams are seeded modulo 2^63 - 1


def make_logger(kind: str, run_dir: Path):
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    if kind == "tensorboard":
        try:
            return TensorBoardLogger(run_dir, name="logs")
        except ModuleNotFoundError:
            print("tensorboard is not installed; logging to CSV instead")
    return CSVLogger(run_dir, name="logs")


def validate_args(args) -> tuple[Path, Path | None]:
    """Every option checked before any work (one line naming option, value and what is allowed); returns the
    flow file to write (None: the weights cache, see ``weights.flows``) and the checkpoint to resume from."""
    from rls_lightning.cli.common import check_training_hardware, resume_checkpoint
    from rls_lightning.flow.maf import MAX_BLOCKS, MAX_HIDDEN_FEATURES, MAX_MADE_RESIDUAL_BLOCKS

    check_int("--blocks", args.blocks, 1, MAX_BLOCKS)
    check_int("--hidden", args.hidden, 1, MAX_HIDDEN_FEATURES)
    check_int("--made-blocks", args.made_blocks, 0, MAX_MADE_RESIDUAL_BLOCKS)
    # batch-norm layers cannot normalise a batch of one sample
    check_int("--batch-size", args.batch_size, 2 if args.batch_norm else 1)
    check_int("--num-samples", args.num_samples, 1)
    check_float("--lr", args.lr, positive=True)
    check_int("--val-samples", args.val_samples, 1)
    check_int("--val-every", args.val_every, 1)
    check_int("--patience", args.patience, 0)
    check_int("--stats-samples", args.stats_samples, 2)  # a standard deviation needs two samples
    check_int("--seed", args.seed, 0, MAX_SEED)
    check_int("--report-samples", args.report_samples, 2)
    check_choice("--logger", args.logger, LOGGERS)
    check_training_hardware(args.accelerator, args.devices, args.num_nodes, args.precision)
    args.generator_name = str(args.generator)  # as given: a registry name stays one in the cache's description
    args.generator = check_generator(args.generator, "pass --generator PATH to your StyleGAN2 checkpoint")
    if args.output is None:  # its file name needs the generator's fingerprint: known once the generator is loaded
        check_output_folder("the flow cache (--output's default)", flow_folder())
    else:
        check_output_file("--output", args.output, not_equal={"--generator": args.generator})
    check_output_folder("--run-dir", args.run_dir)
    return args.output, resume_checkpoint(args.run_dir, args.resume)


@guarded
def main(argv: list[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    output, ckpt_path = validate_args(args)

    from rls_lightning.cli.common import StopAtStepBoundary, report_interruption
    from rls_lightning.interrupts import Interrupted, StopRequests

    checkpoint = Path(args.run_dir) / "checkpoints" / "last.ckpt"
    with StopRequests() as stop:
        stopper = StopAtStepBoundary(stop, checkpoint)
        try:
            return train(args, output, ckpt_path, stopper)
        except Interrupted as err:
            return report_interruption(err, checkpoint, stopper.saved_step)


def train(args, output: Path | None, ckpt_path: Path | None, stopper: StopAtStepBoundary) -> int:
    """Fit the flow, then write the flow file of the best checkpoint and its Gaussianization report."""
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    from rls_lightning.cli.common import check_resume_matches
    from rls_lightning.runtime import resolve_precision
    from rls_lightning.cli.progress import CleanRichProgressBar
    from rls_lightning.runtime import silence_known_lightning_warnings
    from rls_lightning.flow.checkpoint import mapping_fingerprint, save_flow
    from rls_lightning.flow.lightning_module import FlowPrior, flow_config_for
    from rls_lightning.flow.report import gaussianization_report, write_report
    from rls_lightning.stylegan import load_generator

    silence_known_lightning_warnings()
    G = load_generator(args.generator)
    fingerprint = mapping_fingerprint(G.mapping)
    in_cache = output is None
    output = cached_flow_path(fingerprint) if in_cache else output
    output.parent.mkdir(parents=True, exist_ok=True)
    flow_config = flow_config_for(G.w_dim, num_blocks=args.blocks, hidden_features=args.hidden,
                                  made_residual_blocks=args.made_blocks, batch_norm=args.batch_norm)
    module = FlowPrior(G.mapping, G.z_dim, flow_config, num_samples=args.num_samples, batch_size=args.batch_size,
                       lr=args.lr, val_samples=args.val_samples, stats_samples=args.stats_samples, seed=args.seed)
    del G  # only the mapping network is needed
    if ckpt_path is not None:
        check_resume_matches(args.resume, ckpt_path, module, same_as={"mapping.": "--generator"})

    run_dir = Path(args.run_dir)
    checkpointing = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="flow-{step}-{val_nll:.2f}",
                                    monitor="val_nll", mode="min", save_top_k=1, save_last=True,
                                    enable_version_counter=False)  # a resumed run overwrites last.ckpt
    steps_per_device = module.steps_per_device(args.devices * args.num_nodes)
    trainer = L.Trainer(
        accelerator=args.accelerator, devices=args.devices, num_nodes=args.num_nodes,
        strategy="ddp" if args.devices * args.num_nodes > 1 else "auto",
        precision=resolve_precision(args.precision, args.accelerator),
        max_epochs=-1, max_steps=steps_per_device, check_val_every_n_epoch=None,
        val_check_interval=min(args.val_every, steps_per_device),
        num_sanity_val_steps=0, gradient_clip_val=10.0, logger=make_logger(args.logger, run_dir),
        callbacks=[checkpointing, EarlyStopping(monitor="val_nll", mode="min", patience=args.patience),
                   CleanRichProgressBar(), stopper],
        default_root_dir=run_dir, log_every_n_steps=10,
    )
    trainer.fit(module, ckpt_path=ckpt_path, weights_only=True)
    stopper.stop.check()  # a signal during the last step: the outputs are not written, last.ckpt is complete

    best = checkpointing.best_model_path
    if best:
        state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
        module.load_state_dict(state)
    val = trainer.validate(module, verbose=False)
    if not trainer.is_global_zero:
        return 0
    val_nll = float(val[0]["val_nll"]) if val else float("nan")
    module = module.cpu()
    bundle = module.to_bundle({"val_nll": val_nll, "best_checkpoint": str(best),
                               "samples_seen": int(trainer.global_step * args.batch_size * trainer.world_size),
                               "generator": str(args.generator)})
    save_flow(bundle, output)
    print(f"flow prior written to {output} (validation NLL {val_nll:.2f} nats per w)")
    if in_cache:
        describe_flow(output, generator=args.generator_name, fingerprint=fingerprint, val_nll=val_nll)
        print(f"it is in the weights cache under the fingerprint of {args.generator_name}'s mapping network: "
              "invert.py, the web page and RLS.from_pretrained use it for this generator without --flow"
              + (f"; the shipped demo flow {DEMO_FLOW} is left as it is" if args.generator == DEMO_GENERATOR
                 else ""))
    if args.report:
        report = gaussianization_report(module.mapping, module.hparams.z_dim, bundle.flow,
                                        num_samples=args.report_samples, seed=args.seed)
        json_path, png_path = write_report(report, output.with_name(f"{output.stem}-report"))
        numbers = report["squared_norms"]
        print(f"Gaussianization (KS distance of squared norms to chi2): z {numbers['z']['ks_to_chi2']:.3f}, "
              f"F(w) {numbers['flow']['ks_to_chi2']:.3f}, PULSE {numbers['pulse']['ks_to_chi2']:.3f}; "
              f"see {png_path} and {json_path}")
    return 0


if __name__ == "__main__":  # python -m: the module is imported already; rls-* and the scripts hold signals meanwhile
    from rls_lightning.interrupts import for_process

    for_process(main)
