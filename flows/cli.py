"""The `vad` command line."""
from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(help="vad: find and localize anomalous events in recorded surveillance video.", no_args_is_help=True)
console = Console()


@app.callback()
def main() -> None:
    """vad: find and localize anomalous events in recorded surveillance video."""


@app.command()
def demo(epochs: int = typer.Option(20, help="training epochs")) -> None:
    """Train ADNet on generated clip-feature sequences and print F1@k on held-out generated videos."""
    import torch

    from anomaly_models import ADNet, TrainConfig, predict, train
    from anomaly_models.metrics import f1_at_k
    from anomaly_models.synthetic import generated_sequences

    torch.set_num_threads(2)
    feats, labels = generated_sequences(40, seed=1)
    test_feats, test_labels = generated_sequences(16, seed=2)
    model = ADNet(feats[0].shape[1])
    train(model, feats, labels, TrainConfig(epochs=epochs),
          on_epoch=lambda e, loss: console.print(f"epoch {e + 1}/{epochs} loss {loss:.4f}"))
    preds = [(predict(model, x, 64) > 0.5).astype(int) for x in test_feats]
    f1 = f1_at_k(preds, [y.astype(int) for y in test_labels])
    for view, row in f1.items():
        console.print(f"{view:9s} " + "  ".join(f"F1@{int(k * 100)}={v:6.2f}" for k, v in row.items()))


if __name__ == "__main__":
    app()
