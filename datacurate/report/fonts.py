"""A CJK-capable font for matplotlib plots, so Chinese class names are not drawn as boxes.

mplfonts ships Noto Sans CJK SC; it is registered with matplotlib's font manager once, and the
sans-serif list falls back to fonts a system may have, then DejaVu Sans for Latin text.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

SANS = ["Noto Sans CJK SC", "Noto Sans CJK JP", "WenQuanYi Zen Hei", "SimHei", "DejaVu Sans"]


@lru_cache(maxsize=1)
def register_cjk_font() -> list[str]:
    """Register the packaged Noto Sans CJK SC (when mplfonts is installed); return the sans-serif list."""
    from matplotlib import font_manager

    try:
        import mplfonts
    except ImportError:
        return SANS
    font = Path(mplfonts.__file__).parent / "fonts" / "NotoSansCJKsc-Regular.otf"
    if font.is_file():
        font_manager.fontManager.addfont(str(font))
    return SANS


def use_cjk_font(plt) -> None:
    """Make pyplot draw text with the CJK font first."""
    plt.rcParams["font.sans-serif"] = register_cjk_font()
    plt.rcParams["font.family"] = "sans-serif"
