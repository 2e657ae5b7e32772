"""`evaluation.html`: the evaluation as one self-contained page (plots embedded as PNG data URIs, the reports'
Content-Security-Policy): the thesis-style table with bootstrap intervals, ROC and precision-recall curves per model
(both AP conventions in the legend), per-class bars (frame AUC over the class's videos and abnormal F1@k), and each
calibrated model's threshold curve (F1@k, false-alarm rate and segment recall against the threshold, the chosen and
the previous thresholds marked). Built only from evaluation results (`evaluate.evaluate_scores`), no score reads."""

from __future__ import annotations

import html

from .pages import STATIC_CSP as CSP
from .pages import STYLE
from .report import _png


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _cell(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def curves_png(results: list[dict], kind: str) -> str:
    """ROC (kind "roc") or precision-recall ("pr") curves of every model on one plot."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    for r in results:
        curve = r.get("curves", {}).get(kind)
        if not curve:
            continue
        if kind == "roc":
            ax.plot(curve["fpr"], curve["tpr"], label=f"{r['model_id']} (AUC {_cell(r['auc'])})")
        else:
            ax.step(curve["recall"], curve["precision"], where="post",
                    label=f"{r['model_id']} (AP {_cell(r['ap'])}, trapezoid {_cell(r['ap_trapezoid'])})")  # fmt: skip
    if kind == "roc":
        ax.plot([0, 1], [0, 1], color="#999", linestyle=":", linewidth=1)
        ax.set(xlabel="false-positive rate (frames)", ylabel="true-positive rate (frames)", title="ROC")
    else:
        ax.set(xlabel="recall (frames)", ylabel="precision (frames)", title="Precision-recall")
    ax.set(xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="lower right" if kind == "roc" else "lower left", fontsize=7)
    return _png(fig)


def per_class_png(result: dict) -> str | None:
    """Grouped bars per annotated class: frame AUC over that class's videos, and abnormal F1@k (middle k)."""
    classes = result.get("per_class", {})
    if not classes:
        return None
    plt = _plt()
    ks = result["overlaps"]
    k = str(ks[len(ks) // 2])
    names = list(classes)
    auc = [classes[c]["auc"] or 0.0 for c in names]
    f1 = [classes[c]["f1"]["abnormal"][k] if classes[c]["abnormal_segments"] else 0.0 for c in names]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(names) + 2), 3.2))
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], auc, width=0.4, label="frame AUC (class videos)", color="#1f4e79")
    ax.bar([x + 0.2 for x in xs], f1, width=0.4, label=f"abnormal F1@{k}", color="#d62728")
    ax.set_xticks(list(xs), names, rotation=30, ha="right")
    ax.set(ylim=(0, 105), ylabel="%", title=f"Per class: {result['model_id']}")
    ax.legend(fontsize=7)
    return _png(fig)


def calibration_png(result: dict) -> str | None:
    """The model card's calibration curve against the threshold, with the chosen and previous thresholds."""
    calibration = result.get("calibration")
    if not calibration or not calibration.get("curve"):
        return None
    plt = _plt()
    curve = sorted(calibration["curve"], key=lambda p: p["threshold"])
    xs = [p["threshold"] for p in curve]
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    k = round(100 * calibration["k"])
    for key, label, color, width in (("recall", f"segment recall@{k}", "#2ca02c", 1.2),
                                     ("far", "false-alarm rate", "#d62728", 1.2),
                                     ("f1", f"abnormal F1@{k}", "#1f4e79", 2.2)):  # fmt: skip
        ax.step(xs, [p[key] if p[key] is not None else float("nan") for p in curve], where="post", label=label,
                color=color, linewidth=width)  # fmt: skip
    ax.axvline(calibration["threshold"], color="#000", linewidth=1.2, label=f"chosen {calibration['threshold']:.3f}")
    previous = result.get("previous_threshold")
    if previous is not None:
        ax.axvline(previous, color="#777", linestyle="--", linewidth=1, label=f"before {previous:.3f}")
    target = f", target {calibration['target']:g} %" if calibration.get("target") is not None else ""
    ax.set(xlim=(0, 1), ylim=(0, 102), xlabel="threshold", ylabel="%",
           title=f"Calibration: {result['model_id']} (by {calibration['criterion']}{target}, "
                 f"{calibration['videos']} validation videos)")  # fmt: skip
    ax.legend(fontsize=7, loc="center right")
    return _png(fig)


def _table(header: list[str], rows: list[list[str]]) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _img(alt: str, png: str | None) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{png}">' if png else ""


def render_evaluation_html(results: list[dict], annotations: str = "") -> str:
    e = html.escape
    ks = results[0]["overlaps"]
    header = ["model", *(f"{v} F1@{k}" for v in ("abnormal", "normal", "all") for k in ks),
              "AUC", "AUC (abnormal videos)", "AP", "AP (trapezoid)", "FAR %", "threshold", "videos"]  # fmt: skip
    rows = [[r["model_id"], *(f"{r['f1'][v][str(k)]:.2f}" for v in ("abnormal", "normal", "all") for k in ks),
             _cell(r["auc"]), _cell(r.get("auc_abnormal_videos")), _cell(r["ap"]), _cell(r["ap_trapezoid"]),
             _cell(r["far"]), f"{r['threshold']:.3f}", str(r["videos"])] for r in results]  # fmt: skip
    sections = []
    with_intervals = [r for r in results if r.get("intervals")]
    if with_intervals:
        names = list(with_intervals[0]["intervals"])
        n = with_intervals[0]["bootstrap"]["resamples"]
        sections.append(
            f"<h2>95% intervals</h2><p class=muted>percentile bootstrap over videos, {n} resamples, seed 0</p>"
            + _table(
                ["model", *names],
                [
                    [r["model_id"], *(f"{_cell(lo)}–{_cell(hi)}" for lo, hi in r["intervals"].values())]
                    for r in with_intervals
                ],
            )  # fmt: skip
        )
    sections.append(
        "<h2>Curves (frames of all evaluated videos)</h2>"
        + _img("ROC curves", curves_png(results, "roc"))
        + _img("precision-recall curves", curves_png(results, "pr"))
    )
    for r in results:
        parts = [_img(f"per-class bars of {r['model_id']}", per_class_png(r)),
                 _img(f"calibration curve of {r['model_id']}", calibration_png(r))]  # fmt: skip
        if not r.get("calibration"):
            parts.append("<p class=muted>not calibrated: the threshold is the training-time value "
                         "(<code>vad calibrate</code> chooses one on a validation split)</p>")  # fmt: skip
        detection = ", ".join(f"{k}%: {_cell(v)}" for k, v in r.get("detection_map", {}).items())
        parts.append(f"<p>temporal-IoU detection mAP {e(detection)}</p>")
        sections.append(f"<h2>{e(r['model_id'])}</h2>" + "".join(parts))
    return f"""<!doctype html><html><head><meta charset="utf-8">{CSP}<title>Evaluation</title>
<style>{STYLE}img{{display:inline-block;margin:4px}}</style></head><body>
<h1>Evaluation</h1>
<p class=muted>annotations: {e(annotations)} &middot; percentages; AP is scikit-learn's average precision (step-wise),
AP (trapezoid) the trapezoidal area under the precision-recall curve; FAR: frames of normal videos above the
threshold</p>
{_table(header, rows)}
{"".join(sections)}
</body></html>"""
