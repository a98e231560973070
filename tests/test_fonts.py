"""Plots draw Chinese class names with real glyphs, not boxes."""

from __future__ import annotations

import warnings

from datacurate.train.outputs import _pyplot


def test_chinese_labels_have_glyphs(tmp_path):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.set_yticks([0, 1], ["条纹_stripes", "可回收物_易拉罐"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.savefig(tmp_path / "cjk.png", format="png")
    plt.close(fig)
    missing = [str(w.message) for w in caught if "missing from font" in str(w.message)]
    assert missing == []
    assert (tmp_path / "cjk.png").stat().st_size > 0
